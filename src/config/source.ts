/**
 * Reading manifest files: -f FILE|DIR expansion, multi-document YAML parsing that keeps node
 * ranges, and mapping field paths back to file:line:column for error messages.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, isPair, type Document, type Node } from 'yaml';
import type { ManifestIssue, SourcePosition } from '../util/errors.js';
import { markdownLinkHint } from './hints.js';

/** A field path as zod reports it: object keys and array indices. */
export type FieldPath = readonly (string | number)[];

export interface SourceDocument {
  file: string;
  /** Plain JS value of the document (null for an empty document). */
  value: unknown;
  /** Position of the document start. */
  position: SourcePosition;
  /** Position of a field's value (or, with `key`, of its key); the nearest existing ancestor when absent. */
  locate(path: FieldPath, key?: boolean): SourcePosition;
}

export interface ParsedFiles {
  documents: SourceDocument[];
  issues: ManifestIssue[];
}

/** -f arguments to files: a directory stands for its *.yaml / *.yml files, sorted by name. */
export function expandManifestPaths(paths: string[]): { files: string[]; issues: ManifestIssue[] } {
  const files: string[] = [];
  const issues: ManifestIssue[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // Manifest text given in place of a path may hold Secret documents: it is never repeated.
      const named = p.includes('\n') ? `given as ${p.split('\n').length} lines of text, not a path` : `"${p}": no such file or directory`;
      issues.push({ path: '', message: `cannot read manifest ${named}`, hint: 'pass -f with a YAML file or a directory of *.yaml files' });
      continue;
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    const inDir = readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(p, f));
    if (inDir.length === 0) issues.push({ path: '', message: `directory "${p}" holds no *.yaml or *.yml file` });
    files.push(...inDir);
  }
  return { files, issues };
}

export function parseManifestFiles(files: string[]): ParsedFiles {
  const documents: SourceDocument[] = [];
  const issues: ManifestIssue[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      issues.push({ path: '', message: `cannot read manifest "${file}": ${(err as Error).message}` });
      continue;
    }
    const parsed = parseText(file, text);
    documents.push(...parsed.documents);
    issues.push(...parsed.issues);
  }
  return { documents, issues };
}

export function parseText(file: string, text: string): ParsedFiles {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  const lines = text.split('\n');
  const documents: SourceDocument[] = [];
  const issues: ManifestIssue[] = [];
  // parseAllDocuments returns an EmptyStream (an array with no documents) for blank input.
  (Array.isArray(docs) ? docs : [docs]).forEach((doc: Document.Parsed) => {
    if (doc.errors.length > 0) {
      issues.push(...yamlErrors(doc, lines, at, (offset) => formatPath(pathAtOffset(doc.contents as Node | null, offset))));
      return;
    }
    const root = doc.contents as Node | null;
    const position = at(root?.range?.[0] ?? doc.range[0]);
    documents.push({
      file,
      value: doc.toJS({ maxAliasCount: 100 }),
      position,
      locate: (path, key) => locateNode(root, path, key ?? false, at) ?? position,
    });
  });
  return { documents, issues };
}

/** YAML syntax errors, one issue per distinct line, with a Markdown-link hint when the line has one. */
function yamlErrors(
  doc: Document.Parsed,
  lines: string[],
  at: (offset: number) => SourcePosition,
  pathAt: (offset: number) => string,
): ManifestIssue[] {
  const seenLines = new Set<number>();
  const out: ManifestIssue[] = [];
  const secret = doc.get('kind') === 'Secret';
  for (const err of doc.errors) {
    const position = at(err.pos[0]);
    if (seenLines.has(position.line)) continue;
    seenLines.add(position.line);
    const lineText = lines[position.line - 1] ?? '';
    // A Secret's line holds its value: say what is wrong without repeating any of it.
    const link = markdownLinkHint(lineText);
    const md = link && secret ? 'this looks like a Markdown link; write the bare value' : link;
    const misaligned = err.code === 'BAD_INDENT' ? /^(\s*)(?:-\s*)?([^\s:#]+):/.exec(lineText) : null;
    const hint =
      md ??
      (misaligned
        ? `"${misaligned[2]}" starts in column ${misaligned[1].length + 1}, which matches no mapping around it: align it with its sibling keys`
        : err.code === 'BAD_INDENT' || err.code === 'MISSING_CHAR' || err.code === 'UNEXPECTED_TOKEN'
          ? 'check the indentation: keys of one mapping must start in the same column, nested keys further right'
          : undefined);
    out.push({
      position: misaligned ? { ...position, column: misaligned[1].length + 1 } : position,
      // The partial tree knows which field a Markdown link broke; an indentation error has no reliable field.
      path: md ? pathAt(err.pos[0]) : misaligned ? misaligned[2] : '',
      message: `invalid YAML: ${firstLine(err.message)}`,
      expected: 'a well-formed YAML document',
      hint,
    });
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/** The deepest field whose key or value spans `offset` (the parser still builds a partial tree on errors). */
function pathAtOffset(root: Node | null, offset: number): FieldPath {
  const path: (string | number)[] = [];
  let node: unknown = root;
  for (;;) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const start = (p.key as Node | null)?.range?.[0];
        const end = (p.value as Node | null)?.range?.[2] ?? (p.key as Node | null)?.range?.[2];
        return start !== undefined && end !== undefined && start <= offset && offset <= end;
      });
      if (pair && isScalar(pair.key)) {
        path.push(String(pair.key.value));
        next = pair.value;
      }
    } else if (isSeq(node)) {
      const i = node.items.findIndex((item) => {
        const r = (item as Node | null)?.range;
        return r != null && r[0] <= offset && offset <= r[2];
      });
      if (i >= 0) {
        path.push(i);
        next = node.items[i];
      }
    }
    if (next === undefined) return path;
    node = next;
  }
}

function locateNode(
  root: Node | null,
  path: FieldPath,
  wantKey: boolean,
  at: (offset: number) => SourcePosition,
): SourcePosition | undefined {
  let node: unknown = root;
  let best: SourcePosition | undefined = rangeStart(root, at);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return best;
      const keyPos = rangeStart(pair.key as Node, at);
      if (last && wantKey) return keyPos ?? best;
      node = pair.value;
      // A key with no value (`barmanObjectStore:` followed by nothing) has no value range.
      best = rangeStart(node as Node | null, at) ?? keyPos ?? best;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      if (node === undefined) return best;
      best = rangeStart(node as Node, at) ?? best;
    } else {
      return best;
    }
  }
  return best;
}

function rangeStart(node: Node | null | undefined, at: (offset: number) => SourcePosition): SourcePosition | undefined {
  return node?.range ? at(node.range[0]) : undefined;
}

/** Dotted display form of a path: spec.externalClusters[0].barmanObjectStore */
export function formatPath(path: FieldPath): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s ? `.${seg}` : seg;
  }
  return s;
}
