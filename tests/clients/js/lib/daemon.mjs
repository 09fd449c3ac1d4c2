// A shmqd per test file, with its SQS bridge on a free port of 127.0.0.1,
// in its own namespace, and SQS clients (AWS SDK for JavaScript v3, JSON
// protocol) for it. ctest passes the binaries as SHMQD and SHMQCTL.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before } from 'node:test';
import { SQSClient } from '@aws-sdk/client-sqs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const SHMQD = process.env.SHMQD || join(repo, 'build/bin/shmqd');
export const SHMQCTL = process.env.SHMQCTL || join(repo, 'build/bin/shmqctl');
export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';

// Never the user's AWS set-up: dummy credentials, no config files.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('AWS_')) delete process.env[name];
}
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  AWS_REGION: REGION,
  AWS_EC2_METADATA_DISABLED: 'true',
  NO_PROXY: '127.0.0.1,localhost',
});

let counter = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  // Starts shmqd and resolves once its bridge listens.
  static async start(extraArgs = []) {
    const d = new Daemon();
    d.ns = `jsc${process.pid}x${counter++}`;
    d.dir = mkdtempSync(join(tmpdir(), `shmq-${d.ns}-`));
    const portFile = join(d.dir, 'port');
    d.logPath = join(d.dir, 'shmqd.log');
    const log = openSync(d.logPath, 'w');
    d.proc = spawn(SHMQD, ['--namespace', d.ns, '--bridge-listen', '127.0.0.1:0', '--bridge-port-file', portFile,
      '--log-level', 'warn', ...extraArgs], { stdio: ['ignore', log, log] });
    closeSync(log);
    // Should the test process end without stop(): no daemon outlives it.
    const killOnExit = () => d.proc.kill('SIGTERM');
    process.once('exit', killOnExit);
    d.removeExitHook = () => process.removeListener('exit', killOnExit);
    d.exited = new Promise((r) => d.proc.once('exit', (code, signal) => r({ code, signal })));
    let exitedEarly = false;
    d.exited.then(() => { exitedEarly = true; });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exitedEarly) {
        const text = d.log();
        d.cleanup();
        throw new Error(`shmqd exited at start:\n${text}`);
      }
      try {
        const port = parseInt(readFileSync(portFile, 'utf8').trim(), 10);
        if (port > 0) {
          d.port = port;
          break;
        }
      } catch { /* not written yet */ }
      if (Date.now() > deadline) {
        await d.stop();
        throw new Error('shmqd did not write its bridge port within 15 s');
      }
      await sleep(20);
    }
    d.endpoint = `http://127.0.0.1:${d.port}`;
    return d;
  }

  client({ accessKeyId = 'test', secretAccessKey = 'test', ...options } = {}) {
    return new SQSClient({
      endpoint: this.endpoint,
      region: REGION,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
      ...options,
    });
  }

  queueUrl(name) {
    return `${this.endpoint}/${ACCOUNT}/${name}`;
  }

  // Runs shmqctl in this daemon's namespace; resolves to its stdout.
  async shmqctl(...args) {
    const { stdout } = await promisify(execFile)(SHMQCTL, ['--namespace', this.ns, ...args.map(String)], {
      timeout: 30000,
    });
    return stdout;
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  // SIGTERM, then the segments and the temporary directory go.
  async stop() {
    this.removeExitHook();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
    this.cleanup();
  }

  cleanup() {
    for (const f of readdirSync('/dev/shm')) {
      if (f.startsWith(`shmq.${this.ns}.`)) {
        try {
          unlinkSync(join('/dev/shm', f));
        } catch { /* gone already */ }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// A name no other test of this process uses.
let names = 0;
export const unique = (stem) => `${stem}-${names++}`;

// A daemon and a client for the enclosing describe() block: started before
// its tests (then handed to `started(daemon, sqs)`), stopped after them.
export function daemonForSuite(started, args = []) {
  let daemon;
  let sqs;
  before(async () => {
    daemon = await Daemon.start(args);
    sqs = daemon.client();
    started(daemon, sqs);
  });
  after(async () => {
    sqs?.destroy();
    await daemon?.stop();
  });
}
