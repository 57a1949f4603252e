/**
 * One RSocket connection over WebSocket, set up exactly as clients/client.py does:
 * data MIME application/json, metadata MIME message/x.rsocket.composite-metadata.v0,
 * the bearer token (if any) in the SETUP payload's composite metadata
 * (message/x.rsocket.authentication.v0), and every request's route in composite
 * metadata (message/x.rsocket.routing.v0). Request bodies drop null fields, as the
 * Python client's `_encode` does.
 */
import { type Cancellable, type Payload, type Requestable, type RSocket, RSocketConnector } from "rsocket-core";
import {
  WellKnownMimeType,
  encodeBearerAuthMetadata,
  encodeCompositeMetadata,
  encodeRoute,
} from "rsocket-composite-metadata";
import { WebsocketClientTransport } from "rsocket-websocket-client";

export const DATA_MIME = "application/json";
export const METADATA_MIME = "message/x.rsocket.composite-metadata.v0";
/** Keepalive well inside the server's 30 s max lifetime (a longer one is refused, B20). */
export const KEEPALIVE_MS = 5_000;
/** No KEEPALIVE from the server this long: the connection is dead (rsocket-js closes it). */
export const LIFETIME_MS = 15_000;

/** An error the server answered with (`{"code", "message"}` in an ERROR frame), or the transport's. */
export class SportsbookError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }

  static from(error: unknown): SportsbookError {
    if (error instanceof SportsbookError) return error;
    const text = error instanceof Error ? error.message : String(error ?? "connection failed");
    try {
      const body = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof body.code === "string") return new SportsbookError(body.code, String(body.message ?? ""));
    } catch {
      // not our JSON error body
    }
    return new SportsbookError("CONNECTION", text);
  }
}

export function routeMetadata(route: string): Buffer {
  return encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute(route)]]);
}

export function setupMetadata(token: string | null): Buffer | undefined {
  if (!token) return undefined;
  return encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_AUTHENTICATION, encodeBearerAuthMetadata(token)]]);
}

export function encodeBody(body: object): Buffer {
  const kept = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null && value !== undefined));
  return Buffer.from(JSON.stringify(kept), "utf8");
}

function decode<T>(payload: Payload): T {
  return JSON.parse(payload.data ? payload.data.toString("utf8") : "null") as T;
}

/** A request-stream the caller pulls from: it asks for more with `request(n)`. */
export interface StreamHandle {
  request(n: number): void;
  cancel(): void;
}

export interface StreamCallbacks<T> {
  next(item: T): void;
  error(error: SportsbookError): void;
  complete(): void;
}

export class Connection {
  private closed = false;
  private readonly closeCallbacks: ((error?: SportsbookError) => void)[] = [];

  private constructor(private readonly socket: RSocket) {
    socket.onClose((error?: Error) => {
      this.closed = true;
      const reason = error === undefined ? undefined : SportsbookError.from(error);
      for (const callback of this.closeCallbacks) callback(reason);
    });
  }

  static async open(url: string, token: string | null): Promise<Connection> {
    const connector = new RSocketConnector({
      setup: {
        dataMimeType: DATA_MIME,
        metadataMimeType: METADATA_MIME,
        keepAlive: KEEPALIVE_MS,
        lifetime: LIFETIME_MS,
        payload: { data: null, metadata: setupMetadata(token) },
      },
      transport: new WebsocketClientTransport({ url, wsCreator: (target) => new WebSocket(target) }),
    });
    try {
      return new Connection(await connector.connect());
    } catch (error) {
      // The transport rejects with the WebSocket error event's `error`, undefined in browsers.
      throw new SportsbookError("CONNECTION", error instanceof Error ? error.message : `cannot reach ${url}`);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(callback: (error?: SportsbookError) => void): void {
    if (this.closed) callback(undefined);
    else this.closeCallbacks.push(callback);
  }

  close(): void {
    if (!this.closed) this.socket.close();
  }

  request<T>(route: string, body: object = {}): Promise<T> {
    if (this.closed) return Promise.reject(new SportsbookError("CONNECTION", "not connected"));
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (action: () => void) => {
        if (!done) {
          done = true;
          action();
        }
      };
      this.onClose((error) => finish(() => reject(error ?? new SportsbookError("CONNECTION", "the connection closed"))));
      this.socket.requestResponse(
        { data: encodeBody(body), metadata: routeMetadata(route) },
        {
          onNext: (payload) => finish(() => resolve(decode<T>(payload))),
          onError: (error) => finish(() => reject(SportsbookError.from(error))),
          onComplete: () => finish(() => reject(new SportsbookError("PROTOCOL", "empty response"))),
          onExtension: () => undefined,
        },
      );
    });
  }

  /** A request-stream asking for `initialN` items; ask for more with `handle.request(n)`. */
  stream<T>(route: string, body: object, initialN: number, callbacks: StreamCallbacks<T>): StreamHandle {
    let ended = false;
    const end = (action: () => void) => {
      if (!ended) {
        ended = true;
        action();
      }
    };
    this.onClose((error) => end(() => callbacks.error(error ?? new SportsbookError("CONNECTION", "the connection closed"))));
    const requester: Requestable & Cancellable = this.socket.requestStream(
      { data: encodeBody(body), metadata: routeMetadata(route) },
      initialN,
      {
        onNext: (payload, isComplete) => {
          if (ended) return;
          callbacks.next(decode<T>(payload));
          if (isComplete) end(() => callbacks.complete());
        },
        onError: (error) => end(() => callbacks.error(SportsbookError.from(error))),
        onComplete: () => end(() => callbacks.complete()),
        onExtension: () => undefined,
      },
    );
    return {
      request: (n: number) => {
        if (!ended && !this.closed && n > 0) requester.request(n);
      },
      cancel: () => {
        if (!ended) {
          ended = true;
          if (!this.closed) requester.cancel();
        }
      },
    };
  }
}
