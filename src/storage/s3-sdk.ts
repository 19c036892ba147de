/**
 * @aws-sdk/client-s3 for the S3 driver, loaded with require(). The SDK is CommonJS:
 * imported from an ES module, Node 20 also runs every one of its few hundred files through the ES
 * loader's format detection and export scan, which made loading it cost about 0.4 CPU s against
 * 0.2 s by require(); every process that talks to S3 pays it at start (`pgark restore` before its
 * first request, the WAL daemon before its first fetch).
 */
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';

export const s3Sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
