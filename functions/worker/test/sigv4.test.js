import { AwsClient } from "aws4fetch";
import { expect, it } from "vitest";
import vector from "./fixtures/sigv4-vector.json";

it("aws4fetch signs the SES v2 request exactly as botocore does", async () => {
  // GIVEN the client the consumer builds, with the vector's credentials and time
  const client = new AwsClient({
    accessKeyId: vector.access_key_id,
    secretAccessKey: vector.secret_access_key,
    region: vector.region,
    service: vector.service,
    retries: 0,
  });

  // WHEN it signs the same request (Content-Type included, as the consumer sends it)
  const signed = await client.sign(vector.url, {
    method: vector.method,
    headers: { "Content-Type": "application/json" },
    body: vector.body,
    aws: { datetime: vector.amz_date },
  });

  // THEN the Authorization header is botocore's
  expect(signed.headers.get("X-Amz-Date")).toBe(vector.amz_date);
  expect(signed.headers.get("Authorization")).toBe(vector.authorization);
});
