// Needs Redis at 127.0.0.1:6379 (.ci/run starts one). Each test keeps to its own key prefix.
import { busContract } from './contract.js';
import { cleanUpPrefix, makeRedisBus } from './redis-helpers.js';

busContract('redis', (t, prefix) => {
  cleanUpPrefix(t, prefix);
  return Promise.resolve(makeRedisBus(prefix).bus);
});
