// The S3 side-port and /api/v1 JSON API: createS3Server({ objects, ... }) with the
// object layer injected. See server.ts for the request path and docs/s3-compatibility.md.
export { createS3Server, type S3Gateway } from './server.ts'
export type { S3GatewayOptions, GatewayConfig } from './config.ts'
