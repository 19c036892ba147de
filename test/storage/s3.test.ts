import { runContract } from './contract.js';

runContract('s3', 'full');
// pgBackRest-style https endpoint with a private CA given as endpointCA.
runContract('s3-tls', 'basic');
