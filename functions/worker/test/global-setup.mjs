// Runs in Node before the workerd suites: starts the SES stub and moto, hands their URLs
// to the pool (bindings SES_STUB_URL, MOTO_URL, EMAIL_DEAD_LETTER_QUEUE_URL), and stops both at the end.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startSesStub } from "./support/ses-stub.mjs";
import { createSqsQueue, startMoto } from "./support/moto.mjs";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export default async function setup({ provide }) {
  const stub = await startSesStub();
  let moto;
  try {
    moto = await startMoto(repoRoot, { identities: ["mail.example.com"] });
  } catch (error) {
    await stub.close();
    throw error;
  }
  provide("sesStubUrl", stub.url);
  provide("motoUrl", moto.url);
  // The stack's SQS dead-letter queue, where the Worker forwards its DLQ queue's letters.
  provide("sqsDlqUrl", await createSqsQueue(moto.url, "email-sqs-dlq"));
  return async () => {
    await Promise.all([stub.close(), moto.stop()]);
  };
}
