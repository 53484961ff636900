// A small client of the graphql-transport-ws protocol for the dashboard's pages (no external
// assets, so no graphql-ws bundle): one WebSocket to /graphql that reconnects by itself with
// backoff, subscriptions by id, and one-shot operations (queries and mutations) over the same
// socket, so a page never polls and never needs a second connection.

import { VIEWER } from './documents.js';
import { GRAPHQL_PATH } from './format.js';

const TOKEN_KEY = 'market-token';
/**
 * How often the page asks the server for a pong, and how long it waits for any message after.
 * The server's own keep-alive (WebSocket pings) is invisible to page scripts, and a network path
 * that stops carrying anything without closing (a partition, a sleeping laptop's Wi-Fi) would
 * leave the page saying "live" for good: silent that long, the socket is given up and replaced.
 */
const PING_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;
/**
 * A connection not acknowledged by then is given up and made again: a handshake lost in a network
 * partition otherwise waits for the browser's own timeout (none that the page sees), and the page
 * stayed "reconnecting" after the network came back.
 */
const ACK_TIMEOUT_MS = 10_000;
/** The error every open operation gets when the socket closes under it. */
export const CONNECTION_CLOSED = Object.freeze({
  message: 'connection closed',
  extensions: Object.freeze({ code: 'CONNECTION_CLOSED' }),
});

/**
 * Whether a `request` failed because the socket closed under it (the server may or may not have
 * run it), not because the server refused it.
 */
export const closedUnder = (error) => error?.errors?.[0] === CONNECTION_CLOSED;

/** Pings `current` every PING_MS; `silent` is called when nothing came PONG_TIMEOUT_MS after a ping. */
function keepWatch(current, { heardAt, silent }) {
  const timer = setInterval(() => {
    if (current.readyState !== WebSocket.OPEN) return clearInterval(timer);
    const pingedAt = Date.now();
    current.send(JSON.stringify({ type: 'ping' }));
    setTimeout(() => {
      if (heardAt() < pingedAt) silent();
    }, PONG_TIMEOUT_MS);
  }, PING_MS);
  return () => clearInterval(timer);
}

/** An operation's `next`, `error` or `complete` message, handed to its handlers (the last two end it). */
function dispatch(handlers, { type, id, payload }) {
  const handler = handlers.get(id);
  if (type === 'next') return handler?.next?.(payload);
  if (type === 'error' || type === 'complete') handlers.delete(id);
  if (type === 'error') handler?.error?.(payload);
  if (type === 'complete') handler?.complete?.();
}

/** A query or mutation as a subscription: resolves with its execution result ({ data, errors }). */
function request(subscribe, query, variables) {
  return new Promise((resolve, reject) => {
    let result = null;
    subscribe(query, variables, {
      next: (payload) => {
        result = payload;
      },
      error: (errors) => reject(Object.assign(new Error(errors?.[0]?.message ?? 'request refused'), { errors })),
      complete: () => resolve(result),
    });
  });
}

/** The first message of a connection, with the tab's token (none: the gateway's identity, or local development). */
const connectionInit = (token) =>
  JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} });

/** Who the server says this connection is ("userId/isAdmin"); null when it does not say. */
function viewerOf(subscribe) {
  return request(subscribe, VIEWER, {}).then(
    (result) => (result?.data?.viewer ? `${result.data.viewer.userId}/${result.data.viewer.isAdmin}` : null),
    () => null,
  );
}

/**
 * Behind a gateway the identity is the gateway's: one viewer signs out there and another in, in
 * the same browser, and the connection drops with no 4403 to tell the page, which resumed and
 * kept showing the previous viewer's data. So each new connection asks who it is; another viewer
 * than before (or one not known) is a sign-in, and the page starts over, before it resubscribes.
 */
function identityWatch(onSignIn) {
  let viewer = null; // who the server said the last connection was
  let shown = false; // whether the page had a connection since it started or signed in
  return {
    forget() {
      viewer = null;
      shown = false;
    },
    /** A new connection: `open` (the page subscribes) once it is known whose; `current()` is false once it dropped. */
    opened(asked, current, open) {
      if (!shown) {
        shown = true;
        open(); // the first connection: nothing shown yet
        asked.then((seen) => {
          if (current()) viewer = seen;
        });
        return;
      }
      asked.then((seen) => {
        if (!current()) return; // dropped meanwhile: the next connection asks again
        if (seen === null || seen !== viewer) {
          viewer = seen;
          onSignIn?.();
        }
        open();
      });
    },
  };
}

/**
 * @param {object} handlers
 * @param {(kind: 'connecting'|'reconnecting'|'live'|'failed', text: string) => void} handlers.onState
 * @param {() => void} handlers.onOpen called after every connection_ack (first connect and reconnects):
 *   (re)subscribe there
 * @param {() => void} [handlers.onUnauthorised] the server closed with 4403 (no, a bad or an expired
 *   token)
 * @param {() => void} [handlers.onSignIn] a new token is about to be used: whatever the page holds
 *   was another viewer's, so it starts over (called before the new connection)
 */
export function createLiveClient({ onState, onOpen, onUnauthorised, onSignIn }) {
  let socket = null;
  let attempts = 0;
  let reconnects = 0;
  let nextId = 0;
  // Operations go out only after connection_ack: the server closes a socket that sends one
  // before it (4401), so "open" is not enough.
  let acked = false;
  const handlers = new Map(); // operation id → { next, error, complete }
  let heardAt = 0; // when the socket last brought a message
  let unwatch = () => {};
  const identity = identityWatch(onSignIn);

  /** The socket is gone (closed, or silent): every open operation fails, then a reconnect. */
  function dropped(current, code) {
    if (socket !== current) return;
    socket = null;
    acked = false;
    unwatch();
    // Connecting still (a handshake with no answer) or open but silent: closed from this side.
    if (current.readyState === WebSocket.OPEN || current.readyState === WebSocket.CONNECTING) {
      current.close(4408, 'no answer');
    }
    // Marked: a page tells a dropped connection (it resubscribes in onOpen) from a refusal by the server.
    for (const handler of handlers.values()) handler.error?.([CONNECTION_CLOSED]);
    handlers.clear();
    if (code === 4403) {
      identity.forget();
      onState('failed', 'not authorised');
      onUnauthorised?.();
      return;
    }
    reconnects += 1;
    attempts += 1;
    setTimeout(connect, Math.min(10_000, 250 * 2 ** attempts));
  }

  function connect() {
    onState(reconnects ? 'reconnecting' : 'connecting', reconnects ? `reconnecting (${reconnects})…` : 'connecting…');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_PATH}`;
    const token = sessionStorage.getItem(TOKEN_KEY) ?? '';
    const current = new WebSocket(url, 'graphql-transport-ws');
    socket = current;
    acked = false;
    setTimeout(() => {
      if (socket === current && !acked) dropped(current, 4408);
    }, ACK_TIMEOUT_MS);
    current.onopen = () => current.send(connectionInit(token));
    current.onmessage = (message) => {
      heardAt = Date.now();
      receive(current, JSON.parse(message.data));
    };
    current.onclose = (event) => dropped(current, event.code);
  }

  function receive(current, data) {
    if (current !== socket) return; // a socket given up on (login): its messages are not ours
    if (data.type === 'connection_ack') {
      acked = true;
      attempts = 0;
      unwatch();
      unwatch = keepWatch(current, { heardAt: () => heardAt, silent: () => dropped(current, 4408) });
      identity.opened(viewerOf(subscribe), () => socket === current, onOpen);
    } else if (data.type === 'ping') {
      current.send(JSON.stringify({ type: 'pong' }));
    } else {
      dispatch(handlers, data);
    }
  }

  /** Starts a subscription; returns a function that ends it. `next` gets each execution result. */
  function subscribe(query, variables, { next, error, complete }) {
    const id = `op${++nextId}`;
    if (!acked || socket?.readyState !== WebSocket.OPEN) {
      // Between connections (or before the ack): fail at once rather than send too early; onOpen
      // resubscribes.
      error?.([CONNECTION_CLOSED]);
      return () => {};
    }
    handlers.set(id, { next, error, complete });
    socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    return () => {
      if (!handlers.delete(id)) return;
      if (acked && socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id, type: 'complete' }));
    };
  }

  return {
    start: connect,
    subscribe,
    request: (query, variables) => request(subscribe, query, variables),
    /** How many times the socket was re-opened since the page loaded (or the last login). */
    get reconnects() {
      return reconnects;
    },
    /** Stores the token for this tab (null: forgets it) and connects again with it (4403 asks for one). */
    login(token) {
      if (token === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, token);
      // Another viewer from now on: nothing of the previous connection (if still open) may reach the page.
      const previous = socket;
      socket = null;
      acked = false;
      handlers.clear();
      previous?.close();
      identity.forget();
      onSignIn?.();
      reconnects = 0;
      attempts = 0;
      connect();
    },
  };
}

/**
 * A page's sign-in form and sign-out button. The form hands the token to the client (and is
 * emptied: the token stays in the tab's session storage only); the button, shown while the tab
 * holds a token, forgets it and what the page showed, and the server's refusal brings the form back.
 */
export function bindSignIn(client, { form, input, signOut }) {
  const showSignOut = () => {
    signOut.hidden = !sessionStorage.getItem(TOKEN_KEY);
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    form.hidden = true;
    client.login(input.value.trim());
    input.value = '';
    showSignOut();
  });
  signOut.addEventListener('click', () => {
    client.login(null);
    showSignOut();
  });
  showSignOut();
}
