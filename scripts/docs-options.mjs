#!/usr/bin/env node
// Writes docs/options.md from the option table (src/util/options.ts); run through `npm run docs:options`.
import { writeFileSync } from 'node:fs';
import { optionsDoc } from '../dist/src/cli/options-doc.js';

writeFileSync(new URL('../docs/options.md', import.meta.url), optionsDoc());
