// `node test/support/oversized-frame-client.mjs <server url> <token> <rounds>`: a graphql-ws client in a
// process of its own (the server's reads and the client's writes then truly overlap) that opens a
// connection, is acknowledged and sends one 10 MB frame, `rounds` times, one after the other. Prints
// `{"msg":"closed","codes":[…]}`: the close code each connection saw.
import WebSocket from 'ws';

const [url, token, rounds] = process.argv.slice(2);
const codes = [];
for (let round = 0; round < Number(rounds); round++) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  socket.once('open', () =>
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
  );
  socket.once('message', (data) => {
    if (JSON.parse(String(data)).type === 'connection_ack') socket.send(Buffer.alloc(10 * 1024 * 1024, 0x20));
  });
  codes.push(await closed);
}
console.log(JSON.stringify({ msg: 'closed', codes }));
