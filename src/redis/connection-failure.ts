/**
 * Why a first connection to Redis failed, in words a user can act on: the socket error or Redis
 * reply behind ioredis's wrappers ("Reached the max retries per request limit"), or a timeout told
 * apart by how far the connection got. Pure: the caller gathers what it saw.
 */

export interface ConnectionFailureInput {
  /** What the check's command failed with (absent when it timed out). */
  error?: unknown;
  /** The last error the client emitted while connecting: it names the cause the command's error hides. */
  lastError?: unknown;
  /** The check gave up after `timeoutMs`. */
  timedOut: boolean;
  timeoutMs: number;
  /** ioredis's `status` when the check ended: `connect` means TCP is up but Redis has not answered. */
  status: string;
  /** The host of REDIS_URL, to name in an unknown-host message. */
  host: string;
  /** REDIS_URL is rediss://: a connection counts only once its TLS handshake is done. */
  tls?: boolean;
}

export interface ConnectionFailure {
  /**
   * `REDIS_UNREACHABLE`: it may answer later (CLI exit 4). `REDIS_AUTH_FAILED`: it answers, but
   * refuses the credentials in REDIS_URL; waiting does not help (CLI exit 2).
   */
  code: 'REDIS_UNREACHABLE' | 'REDIS_AUTH_FAILED';
  /**
   * What went wrong: after `cannot reach Redis at URL: ` (`connection refused (ECONNREFUSED)`), or
   * for REDIS_AUTH_FAILED after `Redis at URL ` (`wants a password, …`).
   */
  reason: string;
  /** What to do about it. */
  hint: string;
}

const CHECK_URL = 'Set REDIS_URL to point elsewhere.';

const SOCKET_REASONS: Record<string, (host: string) => Omit<ConnectionFailure, 'code'>> = {
  ECONNREFUSED: () => ({ reason: 'connection refused (ECONNREFUSED)', hint: `Is Redis running there? ${CHECK_URL}` }),
  ENOTFOUND: (host) => ({ reason: `unknown host ${JSON.stringify(host)} (ENOTFOUND)`, hint: 'Check the host name in REDIS_URL.' }),
  EAI_AGAIN: (host) => ({
    reason: `the host name ${JSON.stringify(host)} could not be resolved (EAI_AGAIN: DNS did not answer)`,
    hint: 'Check the host name in REDIS_URL and the DNS.',
  }),
  ETIMEDOUT: () => ({
    reason: 'the connection timed out (ETIMEDOUT)',
    hint: `Is the address right, or a firewall dropping packets? ${CHECK_URL}`,
  }),
  EHOSTUNREACH: () => ({ reason: 'no route to the host (EHOSTUNREACH)', hint: CHECK_URL }),
  ENETUNREACH: () => ({ reason: 'the network is unreachable (ENETUNREACH)', hint: CHECK_URL }),
  ECONNRESET: () => ({
    reason: 'the connection was reset (ECONNRESET)',
    hint: `Is it a Redis server (one that wants TLS needs rediss://)? ${CHECK_URL}`,
  }),
};

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A Redis reply refusing the credentials: WRONGPASS (bad password, unknown or disabled ACL user) or NOAUTH (none given). */
function authFailure(error: unknown): ConnectionFailure | undefined {
  const message = messageOf(error);
  if (message.startsWith('WRONGPASS') || /^ERR invalid password/.test(message)) {
    return {
      code: 'REDIS_AUTH_FAILED',
      reason: 'refused the user or password (WRONGPASS: a wrong password, or an ACL user that does not exist or is disabled)',
      hint: 'Check the user and password in REDIS_URL: redis://USER:PASSWORD@host:port.',
    };
  }
  if (message.startsWith('NOAUTH')) {
    return {
      code: 'REDIS_AUTH_FAILED',
      reason: 'wants a password, and REDIS_URL gives none (NOAUTH)',
      hint: 'Put it in REDIS_URL: redis://:PASSWORD@host:port, or redis://USER:PASSWORD@host:port for an ACL user.',
    };
  }
  return undefined;
}

export function describeConnectionFailure(input: ConnectionFailureInput): ConnectionFailure {
  for (const seen of [input.error, input.lastError]) {
    const auth = seen === undefined ? undefined : authFailure(seen);
    if (auth) return auth;
  }
  // The command's own error first: it is the newest. ioredis's retry wrapper names no cause; the
  // socket's last error does.
  for (const seen of [input.error, input.lastError]) {
    const code = codeOf(seen);
    const known = code === undefined ? undefined : SOCKET_REASONS[code];
    if (known) return { code: 'REDIS_UNREACHABLE', ...known(input.host) };
  }
  const notRedis = [input.error, input.lastError].find((seen) => messageOf(seen).startsWith('Protocol error'));
  if (notRedis !== undefined) {
    return {
      code: 'REDIS_UNREACHABLE',
      reason: `something that is not Redis answered (${messageOf(notRedis).replace(/\.? Please report this\.$/, '')})`,
      hint: `Is that the port of a Redis server? ${CHECK_URL}`,
    };
  }
  if (input.timedOut) {
    if (input.status === 'connect') {
      return {
        code: 'REDIS_UNREACHABLE',
        reason: `connected, but no answer within ${input.timeoutMs} ms`,
        hint: `Is it a Redis server, and not stopped or overloaded? ${CHECK_URL}`,
      };
    }
    // A plain Redis takes a TLS ClientHello as an unfinished command and waits: the handshake hangs.
    if (input.tls) {
      return {
        code: 'REDIS_UNREACHABLE',
        reason: `no TLS connection within ${input.timeoutMs} ms`,
        hint: `Does the server on that port speak TLS? A Redis without TLS needs redis://, not rediss://. Or is the address right, or a firewall dropping packets? ${CHECK_URL}`,
      };
    }
    return {
      code: 'REDIS_UNREACHABLE',
      reason: `no connection within ${input.timeoutMs} ms`,
      hint: `Is the address right, or a firewall dropping packets? ${CHECK_URL}`,
    };
  }
  const cause = input.lastError ?? input.error;
  return { code: 'REDIS_UNREACHABLE', reason: messageOf(cause).replace(/\.$/, ''), hint: `Is it running? ${CHECK_URL}` };
}
