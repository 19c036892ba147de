/**
 * Parses a CNPG destinationPath into what a driver needs. Layouts follow barman-cloud:
 *   file:///abs/path              local directory (pgark only)
 *   s3://BUCKET/prefix
 *   https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix   (any *.blob.core.* cloud)
 *   http(s)://HOST:PORT/ACCOUNT/CONTAINER/prefix             (Azurite / emulator form)
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../util/errors.js';

export type Destination =
  | { provider: 'file'; root: string; displayUrl: string }
  | { provider: 's3'; bucket: string; prefix: string; displayUrl: string }
  | { provider: 'azure'; serviceUrl: string; account: string; container: string; prefix: string; displayUrl: string };

/** Object-key prefix for a path inside a bucket: '' or 'a/b/'. */
function keyPrefix(parts: string[]): string {
  const clean = parts.filter((p) => p.length > 0);
  return clean.length ? clean.join('/') + '/' : '';
}

function bad(destinationPath: string, expected: string): UserError {
  return new UserError(
    `destinationPath "${safeDisplay(destinationPath)}" is not a valid object-store URL (expected ${expected})`,
    'use file:///path, s3://bucket/prefix, https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix or http://HOST:PORT/ACCOUNT/CONTAINER/prefix',
  );
}

/** The URL without user info or query string (where a SAS token could hide). */
export function safeDisplay(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return withoutCredentials(url);
  }
}

/** Text as written, less a URL's user info and query (for text that need not parse as a URL). */
export function withoutCredentials(text: string): string {
  return text.replace(/[?#].*$/, '').replace(/\/\/[^/@]*@/, '//');
}

export function parseDestination(destinationPath: string): Destination {
  const displayUrl = safeDisplay(destinationPath);
  if (destinationPath.startsWith('file://')) {
    const rest = destinationPath.slice('file://'.length);
    // file:///abs and file://localhost/abs are URLs; file://relative/dir is accepted as a cwd-relative path.
    const root = rest.startsWith('/') || rest.startsWith('localhost/') ? fileURLToPath(destinationPath) : resolve(rest);
    return { provider: 'file', root, displayUrl };
  }
  let url: URL;
  try {
    url = new URL(destinationPath);
  } catch {
    throw bad(destinationPath, 'a URL');
  }
  const segments = url.pathname.split('/').map(decodeURIComponent);
  segments.shift(); // leading '' before the first '/'
  if (url.protocol === 's3:') {
    if (!url.hostname) throw bad(destinationPath, 's3://BUCKET/prefix');
    return { provider: 's3', bucket: url.hostname, prefix: keyPrefix(segments), displayUrl };
  }
  if (url.protocol === 'https:' || url.protocol === 'http:') {
    const origin = `${url.protocol}//${url.host}`;
    const cloudHost = /^([a-z0-9]+)\.blob\.core\./i.exec(url.hostname);
    if (cloudHost) {
      const [container, ...rest] = segments;
      if (!container) throw bad(destinationPath, 'https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix');
      return { provider: 'azure', serviceUrl: origin, account: cloudHost[1], container, prefix: keyPrefix(rest), displayUrl };
    }
    const [account, container, ...rest] = segments;
    if (!account || !container) throw bad(destinationPath, 'http://HOST:PORT/ACCOUNT/CONTAINER/prefix');
    return { provider: 'azure', serviceUrl: `${origin}/${account}`, account, container, prefix: keyPrefix(rest), displayUrl };
  }
  if (url.protocol === 'gs:') {
    throw new UserError(`destinationPath "${displayUrl}": Google Cloud Storage is not supported by pgark`, 'use an S3 or Azure Blob destination');
  }
  throw bad(destinationPath, 'file://, s3://, http:// or https://');
}
