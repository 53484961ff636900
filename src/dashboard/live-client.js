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
/**
 * Set by the server on the page's root element (dashboard-assets.ts): how the viewer is identified
 * (`gateway`: only by the gateway's header, so no token can help) and how long a connection refused
 * for a connection limit (1013) waits, as the SSE 429's Retry-After: retried every few seconds it
 * was refused again, holding the slot of nobody but costing the server each time.
 */
const AUTH_MODE = document.documentElement.dataset.auth ?? 'tokens';
const BUSY_RETRY_MS = 1000 * (Number(document.documentElement.dataset.busyRetryS) || 36);
/** The reasons that say the request named nobody (the server's "Authentication required: …", a bare 4403). */
const UNIDENTIFIED = /^(Forbidden$|Authentication required\b)/;
const GATEWAY_UNKNOWN = 'The gateway did not say who you are: sign in through it, then reload this page.';
/** Upgrades refused in a row (never opened) after which the page asks over HTTP who it is. */
const FAILED_UPGRADES_CHECK = 3;
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

/** Why the server refused the page's credentials (4403, or 401 over HTTP), in words for the sign-in form. */
function refusalText(reason, sentToken, overHttp) {
  if (sentToken) return `The token was refused${reason && reason !== 'Forbidden' ? `: ${reason}` : ''}.`;
  // A gateway's user id the server refuses ("X-Bfl-User is not a valid user id"): its reason, not
  // "did not say who you are", which sent the user to sign in again at a gateway that had.
  if (AUTH_MODE === 'gateway') return reason && !UNIDENTIFIED.test(reason) ? `Refused: ${reason}.` : GATEWAY_UNKNOWN;
  // No token sent over the socket: a first visit, nothing to explain; over HTTP, a sign-out elsewhere.
  return overHttp ? `Signed out${reason ? `: ${reason}` : ''}.` : '';
}

/**
 * Why the server refused the tab (4403), in words. Behind a gateway it is asked over HTTP: the
 * socket's refusal says only "Forbidden", HTTP says why (a user id the server refuses).
 */
function whyRefused(reason, sentToken) {
  if (AUTH_MODE !== 'gateway' || sentToken) return refusalText(reason, sentToken, false);
  return askOverHttp('').then((answer) => refusalText(answer?.refused ?? reason, false, false));
}

/**
 * Who the server says the tab is, asked over HTTP (its own GraphQL URL, relative to keep a gateway's
 * prefix): `{ viewer }` ("userId/isAdmin"), `{ refused }` (the reason) when it is nobody (401, or a
 * gateway's redirect to its sign-in), null when there is no telling (the server unreachable).
 */
async function askOverHttp(token) {
  try {
    const response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: VIEWER }),
      redirect: 'manual',
    });
    if (response.type === 'opaqueredirect') return { refused: '' };
    const body = await response.json().catch(() => null);
    if (response.status === 401) return { refused: body?.errors?.[0]?.message ?? '' };
    const viewer = body?.data?.viewer;
    return viewer ? { viewer: `${viewer.userId}/${viewer.isAdmin}` } : null;
  } catch {
    return null;
  }
}

/**
 * A gateway where the viewer signed out refuses the upgrade itself: the page sees 1006, never
 * 4403, and went on showing the previous viewer's data. So after a few such refusals the page
 * asks over HTTP: nobody (`refuse`), or another viewer than the one shown (`onSignIn`).
 */
async function checkIdentity({ connected, identity, refuse, onSignIn }) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const answer = await askOverHttp(token);
  if (connected()) return; // connected meanwhile: the connection asked itself
  if (answer?.refused !== undefined) {
    refuse(refusalText(answer.refused, Boolean(token), true));
  } else if (answer && identity.changed(answer.viewer)) {
    identity.forget();
    onSignIn?.();
  }
}

/**
 * The wait before reconnect attempt `attempts` (1, 2, …): doubling from 0.5 s up to 10 s, of which
 * a random half (equal jitter). Without it every dashboard open when a server restarted tried
 * again at the same instants, all of them at once each time.
 */
function backoffMs(attempts) {
  const ceiling = Math.min(10_000, 250 * 2 ** attempts);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * How long to wait before the next connection: exponential backoff up to 10 s; over a connection
 * limit (1013, the page says which) the documented wait, long enough for a slot to be given back.
 * `check`: the upgrades refused in a row call for an identity check (checkIdentity).
 */
function reconnectPolicy() {
  let attempts = 0;
  let failedUpgrades = 0; // connections in a row never acknowledged (a gateway refusing the upgrade)
  return {
    reset(all = true) {
      attempts = 0;
      if (all) failedUpgrades = 0;
    },
    next({ code, reason, acked }) {
      const says = `${reason || 'too many connections'}: trying again in ${BUSY_RETRY_MS / 1000} s`;
      if (code === 1013) return { waitMs: BUSY_RETRY_MS, check: false, says };
      attempts += 1;
      failedUpgrades = acked ? 0 : failedUpgrades + 1;
      const check = failedUpgrades > 0 && failedUpgrades % FAILED_UPGRADES_CHECK === 0;
      return { waitMs: backoffMs(attempts), check };
    },
  };
}

/**
 * Operations by id over the socket `ready()` returns: the current one once acknowledged, else null
 * (the server closes a socket that sends one before connection_ack with 4401: "open" is not enough).
 * `subscribe` starts one and returns a function that ends it; `next` gets each execution result.
 */
function operationsOver(ready) {
  const handlers = new Map(); // operation id → { next, error, complete }
  let nextId = 0;
  function subscribe(query, variables, { next, error, complete }) {
    const id = `op${++nextId}`;
    const socket = ready();
    if (!socket) {
      // Between connections (or before the ack): fail at once rather than send too early; onOpen
      // resubscribes.
      error?.([CONNECTION_CLOSED]);
      return () => {};
    }
    handlers.set(id, { next, error, complete });
    socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    return () => {
      if (handlers.delete(id)) ready()?.send(JSON.stringify({ id, type: 'complete' }));
    };
  }
  return { handlers, subscribe };
}

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
    /** Whether `seen` is another viewer than the one the page shows. */
    changed: (seen) => viewer !== null && seen !== viewer,
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
 * @param {(why: string) => void} [handlers.onUnauthorised] the server closed with 4403 (no, a bad or
 *   an expired token), or said over HTTP that the tab is nobody: the connection is not tried again
 * @param {() => void} [handlers.onSignIn] a new token is about to be used: whatever the page holds
 *   was another viewer's, so it starts over (called before the new connection)
 */
export function createLiveClient({ onState, onOpen, onUnauthorised, onSignIn }) {
  let socket = null;
  let reconnects = 0;
  const policy = reconnectPolicy();
  let retry = null; // the timer of the next connection
  const refusedListeners = [onUnauthorised ?? (() => {})];
  let acked = false;
  const { handlers, subscribe } = operationsOver(() =>
    acked && socket?.readyState === WebSocket.OPEN ? socket : null,
  );
  let heardAt = 0; // when the socket last brought a message
  let unwatch = () => {};
  const identity = identityWatch(onSignIn);

  /** Ends the connection (and the one waiting) for another viewer or none: nothing of it may reach the page. */
  function halt() {
    clearTimeout(retry); // a reconnection waiting would open a second socket beside the next one
    const previous = socket;
    socket = null;
    acked = false;
    handlers.clear();
    previous?.close();
    identity.forget();
  }

  /** The tab is nobody to the server: whatever it shows goes, and it connects no more. */
  function refused(why) {
    halt();
    sessionStorage.removeItem(TOKEN_KEY); // a refused token would only be refused again
    onState('failed', 'not authorised');
    for (const listener of refusedListeners) listener(why);
  }

  /** The socket is gone (closed, or silent): every open operation fails, then a reconnect. */
  function dropped(current, { code, reason = '', sentToken = false }) {
    if (socket !== current) return;
    const wasAcked = acked;
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
    if (code === 4403) return Promise.resolve(whyRefused(reason, sentToken)).then(refused);
    reconnects += 1;
    const { waitMs, check, says } = policy.next({ code, reason, acked: wasAcked });
    if (says) onState('reconnecting', says);
    if (check) checkIdentity({ connected: () => socket && acked, identity, refuse: refused, onSignIn });
    retry = setTimeout(connect, waitMs);
  }

  function connect() {
    onState(reconnects ? 'reconnecting' : 'connecting', reconnects ? `reconnecting (${reconnects})…` : 'connecting…');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_PATH}`;
    const token = sessionStorage.getItem(TOKEN_KEY) ?? '';
    const current = new WebSocket(url, 'graphql-transport-ws');
    socket = current;
    acked = false;
    setTimeout(() => {
      if (socket === current && !acked) dropped(current, { code: 4408 });
    }, ACK_TIMEOUT_MS);
    current.onopen = () => current.send(connectionInit(token));
    current.onmessage = (message) => {
      heardAt = Date.now();
      receive(current, JSON.parse(message.data));
    };
    current.onclose = ({ code, reason }) => dropped(current, { code, reason, sentToken: Boolean(token) });
  }

  function receive(current, data) {
    if (current !== socket) return; // a socket given up on (login): its messages are not ours
    if (data.type === 'connection_ack') {
      acked = true;
      policy.reset(false);
      unwatch();
      unwatch = keepWatch(current, { heardAt: () => heardAt, silent: () => dropped(current, { code: 4408 }) });
      identity.opened(viewerOf(subscribe), () => socket === current, onOpen);
    } else if (data.type === 'ping') {
      current.send(JSON.stringify({ type: 'pong' }));
    } else {
      dispatch(handlers, data);
    }
  }

  return {
    start: connect,
    subscribe,
    request: (query, variables) => request(subscribe, query, variables),
    /** How many times the socket was re-opened since the page loaded (or the last login). */
    get reconnects() {
      return reconnects;
    },
    /** `listener(why)` when the server refuses the tab (see onUnauthorised). */
    onRefused: (listener) => refusedListeners.push(listener),
    /** Stores the token for this tab (null: forgets it) and connects again with it (4403 asks for one). */
    login(token) {
      if (token === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, token);
      halt(); // another viewer from now on
      onSignIn?.();
      reconnects = 0;
      policy.reset();
      connect();
    },
  };
}

/**
 * A page's sign-in form and sign-out button. The form hands the token to the client (and is
 * emptied: the token stays in the tab's session storage only); the button, shown while the tab
 * holds a token, forgets it and what the page showed, and the server's refusal brings the form back
 * with why (`problem`). Identified by a gateway only, the page has no form: no token would work.
 */
export function bindSignIn(client, { form, input, signOut, problem }) {
  const showSignOut = () => {
    signOut.hidden = !sessionStorage.getItem(TOKEN_KEY);
  };
  client.onRefused((why) => {
    form.hidden = AUTH_MODE === 'gateway';
    problem.textContent = why;
    problem.hidden = !why;
    showSignOut();
    // The form (or Sign out) that had the focus was hidden: it fell to <body>, and a keyboard or
    // screen-reader user had to look for the field to try again.
    if (!form.hidden && (!document.activeElement || document.activeElement === document.body)) input.focus();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    form.hidden = true;
    problem.hidden = true;
    client.login(input.value.trim());
    input.value = '';
    showSignOut();
  });
  signOut.addEventListener('click', () => {
    client.login(null);
    showSignOut();
    if (!form.hidden) input.focus(); // else when the server asks for a token (onRefused)
  });
  showSignOut();
}
