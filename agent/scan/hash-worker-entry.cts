// The file piscina loads in each hashing thread. piscina loads its task file with require(); on
// Node 20 that goes through require(esm), which aborts the whole process now and then when a
// worker thread starts (v8 "IsGraphAsync must be used on an instantiated module" or a failed
// assertion in CreateRequiredModuleFacade). This CommonJS file is required instead and loads the
// ESM worker with import(), which has no such race. It holds no logic of its own.
type HashWorker = typeof import('./hash-worker.js');
type HashTask = import('./hash-worker.js').HashTask;
type CompareTask = import('./hash-worker.js').CompareTask;
type DescriptorTask = import('./hash-worker.js').DescriptorTask;

let loading: Promise<HashWorker> | undefined;
const worker = (): Promise<HashWorker> => (loading ??= import('./hash-worker.js'));

// __esModule: piscina's require() then reads `default` and the named task functions as they are.
export = {
  __esModule: true,
  default: async (task: HashTask) => (await worker()).default(task),
  compareBatch: async (task: CompareTask) => (await worker()).compareBatch(task),
  hashDescriptor: async (task: DescriptorTask) => (await worker()).hashDescriptor(task),
  /** Nothing but the thread's start and the worker's load (HashPool.warm). */
  warm: async () => void (await worker()),
};
