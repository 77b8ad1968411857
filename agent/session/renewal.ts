import type { Logger } from 'pino';
import { createCsr, generateKeyPair, type KeyPairPem } from '../../pki/index.js';
import { renewalTime, type Credentials } from '../credentials.js';

/**
 * Certificate renewal on one stream: at a random point of 70-90 % of the certificate's life a new
 * key is made here and its CSR sent; the renewed certificate is stored and the agent reconnects
 * with it. A failure is retried 30 s later; the current certificate stays in use meanwhile.
 */
export interface Renewal {
  /** Arms the timer (on the welcome). */
  schedule(): void;
  /** The controller's answer to the CSR. */
  renewed(certificatePem: string, notAfter: Date | null): void;
  stop(): void;
}

export interface RenewalOptions {
  readonly credentials: Credentials;
  readonly hostname: string;
  readonly clock: () => Date;
  readonly logger: Logger;
  readonly sendCsr: (csrPem: string) => void;
  /** Stores the new key and certificate. */
  readonly save: (keyPem: string, certPem: string) => Promise<void>;
  /** Called once the renewed certificate is stored: reconnect with it. */
  readonly onStored: () => void;
  /** Retry delay after a failure (agent/config.ts stream.renewRetryMs). */
  readonly retryMs: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createRenewal(opts: RenewalOptions): Renewal {
  const log = opts.logger;
  const { retryMs } = opts;
  let timer: NodeJS.Timeout | undefined;
  let key: KeyPairPem | null = null;
  let stopped = false;
  const schedule = (inMs?: number) => {
    if (stopped) return;
    const at = renewalTime(opts.credentials).getTime();
    const wait = inMs ?? Math.min(Math.max(0, at - opts.clock().getTime()), MAX_TIMER_MS);
    clearTimeout(timer);
    timer = setTimeout(() => {
      void (async () => {
        key = await generateKeyPair();
        log.info({ serial: opts.credentials.serial, notAfter: opts.credentials.notAfter.toISOString() }, 'renewing the certificate');
        opts.sendCsr(createCsr(key.privateKeyPem, key.publicKeyPem, opts.hostname));
      })().catch((err: unknown) => {
        log.error({ err }, 'renewal failed; retrying later');
        schedule(retryMs);
      });
    }, wait);
    timer.unref();
  };
  return {
    schedule: () => schedule(),
    renewed(certificatePem, notAfter) {
      const made = key;
      if (!made) return;
      key = null;
      opts
        .save(made.privateKeyPem, certificatePem)
        .then(() => {
          log.info({ notAfter: notAfter?.toISOString() ?? null }, 'certificate renewed; reconnecting with it');
          opts.onStored();
        })
        .catch((err: unknown) => {
          log.error({ err }, 'storing the renewed certificate failed; keeping the current one and retrying later');
          schedule(retryMs);
        });
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
