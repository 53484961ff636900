// `node --import ./test/support/hold-module.mjs`: holds the loading of the module whose URL ends
// with HOLD_MODULE until the test releases it. On reaching it the loader connects to 127.0.0.1:HOLD_PORT
// (the test's signal that the process got there) and waits for a byte or the close of that
// connection. The hooks run on Node's loader thread, so the process's event loop stays free
// meanwhile: signals are handled as they would be while the module loads.
import { register } from 'node:module';

register('./hold-module-hooks.mjs', import.meta.url, {
  data: { module: process.env.HOLD_MODULE, port: Number(process.env.HOLD_PORT) },
});
