// Start moto's server (SES v2) on 127.0.0.1 for the consumer's happy path, and stop it.
// The binary is `MOTO_SERVER_BIN`, else the repository's `.venv/bin/moto_server`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { AwsClient } from "aws4fetch";

export const MOTO_REGION = "eu-west-1";
export const MOTO_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export function motoBinary(repoRoot) {
  return process.env.MOTO_SERVER_BIN || resolve(repoRoot, ".venv/bin/moto_server");
}

/** @returns {Promise<{ url: string, stop: () => Promise<void> }>} */
export async function startMoto(repoRoot, { identities = [] } = {}) {
  const binary = motoBinary(repoRoot);
  if (!existsSync(binary)) {
    throw new Error(`moto_server not found at ${binary}: create the repository's .venv (with moto[server]) or set MOTO_SERVER_BIN`);
  }
  const port = await freePort();
  const child = spawn(binary, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise((done) => {
      if (child.exitCode !== null) return done();
      child.once("exit", () => done());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 3000).unref();
    });
  try {
    await waitUntilUp(url, child, () => stderr);
    const aws = new AwsClient({ ...MOTO_CREDENTIALS, region: MOTO_REGION, service: "ses", retries: 0 });
    for (const identity of identities) {
      const response = await aws.fetch(`${url}/v2/email/identities`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ EmailIdentity: identity }),
      });
      if (!response.ok) throw new Error(`moto CreateEmailIdentity ${identity}: ${response.status} ${await response.text()}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** Create an SQS queue in moto (JSON protocol) and return its URL. */
export async function createSqsQueue(url, name) {
  const aws = new AwsClient({ ...MOTO_CREDENTIALS, region: MOTO_REGION, service: "sqs", retries: 0 });
  const response = await aws.fetch(`${url}/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue" },
    body: JSON.stringify({ QueueName: name }),
  });
  if (!response.ok) throw new Error(`moto CreateQueue ${name}: ${response.status} ${await response.text()}`);
  return (await response.json()).QueueUrl;
}

async function waitUntilUp(url, child, stderr) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr()}`);
    try {
      const response = await fetch(`${url}/moto-api/data.json`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`moto_server did not answer on ${url} within 30 s: ${stderr()}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
