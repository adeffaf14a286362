// Worker-thread entry of the data-parallel replicas (as data/loader_worker_boot.cjs: Node 20 applies no tsx ESM hooks
// inside worker threads, so this registers tsx's CommonJS hooks and loads the TypeScript worker through them).
require('tsx/cjs/api').register();
require('./replica_worker.ts');
