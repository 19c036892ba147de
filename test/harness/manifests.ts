/**
 * CNPG manifest text written byte for byte, for tests whose assertions depend on the text itself:
 * a Secret value's YAML type (an unquoted number, broken base64), a file:line:column. stores.ts
 * builds its Cluster + Secret from a running store with a YAML serialiser, which cannot say those.
 * Every credential refers to a Secret named "creds".
 */

export interface S3StoreText {
  /** Default s3://bucket/pg. */
  destinationPath?: string;
  endpointURL?: string;
  /** The keys of Secret "creds" that hold the access key ID and the secret access key. */
  keys?: readonly [string, string];
}

/** barmanObjectStore fields of an S3 store, indented to sit under a Cluster's barmanObjectStore. */
export function s3StoreText({ destinationPath = 's3://bucket/pg', endpointURL, keys = ['ACCESS_KEY_ID', 'SECRET_ACCESS_KEY'] }: S3StoreText = {}): string {
  return `      destinationPath: ${destinationPath}
${endpointURL === undefined ? '' : `      endpointURL: ${endpointURL}\n`}      s3Credentials:
        accessKeyId: {name: creds, key: ${keys[0]}}
        secretAccessKey: {name: creds, key: ${keys[1]}}
`;
}

export interface ClusterText {
  /** Default pg. */
  name?: string;
  namespace?: string;
  /** barmanObjectStore fields as s3StoreText() indents them; default: s3StoreText(). */
  store?: string;
}

export function clusterText({ name = 'pg', namespace, store = s3StoreText() }: ClusterText = {}): string {
  return `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: ${name}${namespace === undefined ? '' : `\n  namespace: ${namespace}`}
spec:
  backup:
    barmanObjectStore:
${store}`;
}

/** Secret "creds"; `body` is the rest of the document (its stringData: and data: sections). */
export function secretText(body: string): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: creds}
${body}`;
}

/** One multi-document YAML file's text. */
export function yamlDocuments(...docs: string[]): string {
  return docs.join('---\n');
}
