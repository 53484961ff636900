// Loader hooks of hold-module.mjs.
import { connect } from 'node:net';

let target = '';
let port = 0;
let held = false;

export function initialize(data) {
  target = data.module ?? '';
  port = data.port;
}

export async function load(url, context, nextLoad) {
  if (target && !held && url.endsWith(target)) {
    held = true;
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => {
      socket.once('data', resolve);
      socket.once('close', resolve);
      socket.once('error', resolve);
    });
    socket.destroy();
  }
  return nextLoad(url, context);
}
