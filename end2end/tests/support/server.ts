// Starts the real Tidings release binary for a test file: its own port, its own data
// directory (a fresh SQLite database), and the ability to kill and restart it.

import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const projectRoot = path.resolve(__dirname, '../../..');
const binary = process.env.TIDINGS_BIN ?? path.join(projectRoot, 'target/release/tidings');
const READY_TIMEOUT_MS = 30_000;

/** The administrator that servers started with `withAdmin` create at start-up. */
export const ADMIN = { username: 'admin', password: 'e2e admin passphrase' };

export class TidingsServer {
  private process?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly withAdmin: boolean,
  ) {}

  /**
   * Starts a server on a free port with an empty data directory; with `withAdmin` it creates
   * the administrator {@link ADMIN} at start-up, else it starts at the first-run setup.
   */
  static async start({ withAdmin = true } = {}): Promise<TidingsServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tidings-e2e-'));
    const server = new TidingsServer(await freePort(), dataDir, withAdmin);
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the process (again) on the same port and data directory, and waits until ready. */
  async launch(): Promise<void> {
    this.process = spawn(binary, ['--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir], {
      cwd: projectRoot,
      env: {
        ...process.env,
        LEPTOS_ENV: 'PROD',
        TIDINGS_LOG: process.env.TIDINGS_LOG ?? 'warn',
        // The tests' fixture feeds and pages listen on the loopback interface.
        TIDINGS_ALLOW_PRIVATE_FETCH: 'true',
        ...(this.withAdmin ? { TIDINGS_ADMIN_USER: ADMIN.username, TIDINGS_ADMIN_PASSWORD: ADMIN.password } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await waitUntilReady(`${this.url}/readyz`, this.process);
  }

  /** Stops the process with `signal` (SIGKILL simulates a crash) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tidings exited with code ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`tidings was not ready at ${url} within ${READY_TIMEOUT_MS} ms`);
}

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
