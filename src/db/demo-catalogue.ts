/**
 * The demo apps of the local sources (DEMO_DATA=1): an uploaded chart and a Studio app. The
 * remote catalogue's demo apps are data, in catalogue/bundled.json, which `market.olares` syncs
 * from when MARKET_SOURCE_URL is unset. `seedDemoData` in demo-data.ts writes these.
 */

export interface DemoApp {
  name: string;
  title: string;
  description: string;
  categories: string[];
  versions: string[];
  cfgType?: string;
}

export const DEMO_LOCAL_APPS: { sourceId: string; app: DemoApp }[] = [
  {
    sourceId: 'upload',
    app: {
      name: 'my-notes',
      title: 'My Notes',
      description: 'A notes app uploaded as a chart',
      categories: ['Productivity'],
      versions: ['0.1.0'],
    },
  },
  {
    sourceId: 'studio',
    app: {
      name: 'studio-demo',
      title: 'Studio Demo',
      description: 'An app under development in Studio',
      categories: ['Developer Tools'],
      versions: ['0.0.3', '0.0.2'],
    },
  },
];
