/**
 * "Did you mean" helpers for manifest errors: misspelt keys, keys at the wrong indentation,
 * Markdown links and template placeholders pasted into values.
 */
import { withoutCredentials } from '../storage/destination.js';

/** Levenshtein distance; written by hand because it is ten lines and no installed package exports it. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The candidate a misspelt word most likely meant, if any is close enough to be a typo. */
export function closestWord(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    // Case-only differences (ServiceAccountTemplate) count as the closest possible match.
    const d = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = word.length <= 4 ? 1 : word.length <= 8 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

const MARKDOWN_LINK = /\[([^\]\s]*)\]\(([^)\s]*)\)/;

/** A hint when a value (or a raw YAML line) contains Markdown link syntax such as [https://x](https://x). */
export function markdownLinkHint(text: string): string | undefined {
  const m = MARKDOWN_LINK.exec(text);
  if (!m) return undefined;
  // The URL may carry user:password or a SAS query: show it without them.
  const url = withoutCredentials(m[2] || m[1]);
  return `this looks like a Markdown link; write the bare URL: ${url}`;
}

/** Unfilled template placeholders: $name, ${name}, <name>, {{ name }}. */
const PLACEHOLDER = /(\$\{?[A-Za-z_][\w-]*\}?|<[A-Za-z][\w -]*>|\{\{[^}]*\}\})/;

export function placeholderIn(value: string): string | undefined {
  return PLACEHOLDER.exec(value)?.[1];
}

/** Describes where a misplaced key belongs, given the keys allowed around it. */
export interface KeyNeighbourhood {
  /** Keys allowed at this level. */
  here: readonly string[];
  /** Name of this level's field (e.g. "azureCredentials") and the keys allowed one level up. */
  parent?: { name: string; keys: readonly string[] };
  /** Object-valued fields at this level and the keys each of them allows. */
  children: { name: string; keys: readonly string[] }[];
}

/** The hint for an unknown key: wrong indentation first (exact key elsewhere), then spelling. */
export function unknownKeyHint(key: string, around: KeyNeighbourhood): string | undefined {
  if (around.parent?.keys.includes(key)) {
    return `"${key}" belongs one level up, next to "${around.parent.name}", not inside it: indent it less`;
  }
  const child = around.children.find((c) => c.keys.includes(key));
  if (child) return `"${key}" belongs inside "${child.name}": indent it one level further, under ${child.name}:`;
  const spelt = closestWord(key, around.here);
  if (spelt) return `did you mean "${spelt}"?`;
  return undefined;
}
