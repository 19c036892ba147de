import { runContract } from './contract.js';

runContract('file', 'full');
