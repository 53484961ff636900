import { readFileSync } from 'node:fs';

/**
 * The live dashboard's files: static pages that talk to /graphql over graphql-ws. Read once at
 * start; served by the router (routes.ts) with DASHBOARD_CSP.
 */
const DASHBOARD: Record<string, { type: string; body: string }> = Object.fromEntries(
  (
    [
      ['/dashboard', 'dashboard.html', 'text/html; charset=utf-8'],
      ['/dashboard/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
      ['/dashboard/live-client.js', 'live-client.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/state.js', 'state.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/documents.js', 'documents.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/format.js', 'format.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/controls.js', 'controls.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-overview.js', 'render-overview.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-tasks.js', 'render-tasks.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-apps.js', 'render-apps.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-activity.js', 'render-activity.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-filters.js', 'render-filters.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-chart-repo.js', 'render-chart-repo.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/tabs.js', 'tabs.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app', 'app.html', 'text/html; charset=utf-8'],
      ['/dashboard/app-flow.js', 'app-flow.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-documents.js', 'app-flow-documents.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-steps.js', 'app-flow-steps.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-view.js', 'app-flow-view.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow.css', 'app-flow.css', 'text/css; charset=utf-8'],
    ] as const
  ).map(([route, file, type]) => [
    route,
    { type, body: readFileSync(new URL(`../dashboard/${file}`, import.meta.url), 'utf8') },
  ]),
);

/** Everything the dashboard needs comes from this server; nothing else may load. */
export const DASHBOARD_CSP =
  "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/** The dashboard file served at this path, if any. */
export function dashboardAsset(path: string | undefined): { type: string; body: string } | undefined {
  return path === undefined ? undefined : DASHBOARD[path];
}
