import { runContract } from './contract.js';

runContract('azure-connection-string', 'full');
runContract('azure-key', 'basic');
runContract('azure-sas', 'basic');
