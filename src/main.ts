import { serve } from './server.js';

/** Process entry of `npm start`. */
await serve();
