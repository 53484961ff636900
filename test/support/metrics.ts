/** What tests read from a server's /metrics and /readiness, the way a scraper or a probe does. */

/** The value of one series of `{url}/metrics`, as written (`name{label="value",…}`); undefined when absent. */
export async function metricValue(server: { url: string }, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** `{url}/readiness`: its status and JSON body. */
export async function readinessOf(server: { url: string }): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}/readiness`);
  return { status: response.status, body: await response.json() };
}
