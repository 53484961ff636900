import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * A real graphql-ws client subscribed to one operation, with its results in a queue: `next()`
 * waits for the next result (or fails after a deadline), so tests read events in order without
 * sleeping.
 */
export interface Subscription<T> {
  next(timeoutMs?: number): Promise<T>;
  /** Reads until `predicate` matches, returning everything read (the match last). */
  until(predicate: (value: T) => boolean, timeoutMs?: number): Promise<T[]>;
  received: T[];
  close(): Promise<void>;
}

export async function subscribe<T, V>(
  server: { url: string },
  document: TypedDocumentNode<T, V>,
  variables: V,
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<Subscription<T>> {
  const { headers } = options;
  const client: Client = createClient({
    url: `${server.url.replace(/^http/, 'ws')}/graphql`,
    // Headers on the upgrade request, as a gateway in front of the server adds them.
    webSocketImpl: headers
      ? class extends WebSocket {
          constructor(address: string, protocols?: string | string[]) {
            super(address, protocols, { headers });
          }
        }
      : WebSocket,
    retryAttempts: 0,
    lazy: false,
    // Connection failures reach the test through the 'closed' listener below, not the console.
    onNonLazyError: () => {},
    connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : {},
  });
  const queue: T[] = [];
  const received: T[] = [];
  const waiters: { resolve: (value: T) => void; reject: (error: unknown) => void }[] = [];
  let failure: unknown = null;
  const fail = (error: unknown) => {
    failure ??= error;
    for (const waiter of waiters.splice(0)) waiter.reject(failure);
  };
  let acknowledged!: () => void;
  const ready = new Promise<void>((resolve) => {
    acknowledged = resolve;
  });
  client.on('connected', () => acknowledged());
  client.on('closed', (event) => {
    fail(new Error(`socket closed: ${(event as { code?: number }).code}`));
    acknowledged();
  });
  const dispose = client.subscribe<T>(
    { query: print(document), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors?.length) return fail(new Error(JSON.stringify(result.errors)));
        const value = result.data as T;
        received.push(value);
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(value);
        else queue.push(value);
      },
      error: (error) => fail(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: () => {},
    },
  );
  await ready;
  if (failure) throw failure;

  const next = (timeoutMs = 15_000) =>
    new Promise<T>((resolve, reject) => {
      if (failure) return reject(failure);
      const queued = queue.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`no subscription event within ${timeoutMs} ms`)), timeoutMs);
      waiters.push({
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });

  return {
    next,
    received,
    async until(predicate, timeoutMs = 15_000) {
      const seen: T[] = [];
      for (;;) {
        const value = await next(timeoutMs);
        seen.push(value);
        if (predicate(value)) return seen;
      }
    },
    async close() {
      dispose();
      await client.dispose();
    },
  };
}

/** A streamed response's text as it arrives (an SSE stream read by hand), until `close()` aborts it. */
export function readAsItArrives(response: Response, abort: AbortController) {
  let text = '';
  let ended = false;
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    get text() {
      return text;
    },
    /** Whether the server ended the stream (or close() aborted it). */
    get ended() {
      return ended;
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}
