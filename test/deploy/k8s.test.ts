/**
 * deploy/k8s (docs/deploy.md, "Kubernetes"): every manifest the kustomization lists is a valid
 * object by the Kubernetes schemas (kubernetes-models), names no field those schemas do not know
 * (their validators let unknown fields through, so a misspelt `readinesProbe` would otherwise pass
 * unnoticed), and is wired to the programs: probes on the health paths at the metrics port the
 * container exposes and the program is told to listen on, the controller's ports as its defaults,
 * Services and the PodDisruptionBudget selecting the controller's pods, config and secrets from
 * where the comments say.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { compileControllerConfig } from '../../controller/config.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const K8S = join(REPO, 'deploy', 'k8s');
const NM = join(REPO, 'node_modules');

/** The contract of issue 17: metrics and health, plain HTTP, on these ports. */
const METRICS_PORT = { controller: 9464, agent: 9465 } as const;

const MODELS = {
  'v1/Namespace': { model: Namespace, dts: 'kubernetes-models/v1/Namespace.d.ts' },
  'v1/ConfigMap': { model: ConfigMap, dts: 'kubernetes-models/v1/ConfigMap.d.ts' },
  'v1/Service': { model: Service, dts: 'kubernetes-models/v1/Service.d.ts' },
  'apps/v1/Deployment': { model: Deployment, dts: 'kubernetes-models/apps/v1/Deployment.d.ts' },
  'apps/v1/DaemonSet': { model: DaemonSet, dts: 'kubernetes-models/apps/v1/DaemonSet.d.ts' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, dts: 'kubernetes-models/policy/v1/PodDisruptionBudget.d.ts' },
} as const;

// ---- unknown fields, from the models' type declarations ----

interface Shape {
  readonly props: Map<string, string | undefined>;
  readonly imports: Map<string, string>;
}
const shapes = new Map<string, Shape | null>();

/** The properties of the first interface a .d.ts declares, with the interface each refers to. */
function shapeOf(file: string): Shape | null {
  if (shapes.has(file)) return shapes.get(file)!;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2]!;
    imports.set(m[1]!, spec.startsWith('.') ? join(dirname(file), spec.replace(/\.js$/, '.d.ts')) : join(NM, `${spec}.d.ts`));
  }
  const body = /^export interface \w+[^{]*\{\n([\s\S]*?)\n\}/m.exec(text);
  let shape: Shape | null = null;
  if (body) {
    const props = new Map<string, string | undefined>();
    for (const m of body[1]!.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props.set(m[1]!, /^(?:Array<)?(I\w+)>?;$/.exec(m[2]!)?.[1]);
    shape = { props, imports };
  }
  shapes.set(file, shape);
  return shape;
}

function unknownFields(value: unknown, file: string, path: string, out: string[]): void {
  if (Array.isArray(value)) return value.forEach((v, i) => unknownFields(v, file, `${path}[${i}]`, out));
  if (value === null || typeof value !== 'object') return;
  const shape = shapeOf(file);
  if (!shape) return;
  for (const [key, v] of Object.entries(value)) {
    if (!shape.props.has(key)) {
      out.push(`${path}.${key}`);
      continue;
    }
    const ref = shape.props.get(key);
    const next = ref && shape.imports.get(ref);
    if (next && existsSync(next)) unknownFields(v, next, `${path}.${key}`, out);
  }
}

// ---- the manifests ----

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[]; namespace?: string };
const objects: { file: string; obj: K8sObject }[] = [];
for (const file of kustomization.resources) {
  for (const doc of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
    assert.equal(doc.errors.length, 0, `${file}: ${doc.errors.join('; ')}`);
    const obj = doc.toJS() as K8sObject | null;
    if (obj) objects.push({ file, obj });
  }
}
const find = (kind: string, name: string) => {
  const o = objects.find((x) => x.obj.kind === kind && x.obj.metadata.name === name);
  assert.ok(o, `no ${kind} ${name} in the kustomization's resources`);
  return o.obj;
};

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: { runAsUser?: number; capabilities?: { add?: string[]; drop?: string[] } };
}

/** The value of --flag in argv, as --flag=value or --flag value. */
function flag(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i]!.startsWith(`${name}=`)) return args[i]!.slice(name.length + 1);
  }
  return undefined;
}

function portNumber(c: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const p = c.ports?.find((x) => x.name === port);
  assert.ok(p, `${c.name}: probe port "${port}" is not a named port of the container`);
  return p.containerPort;
}

function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** The workload's main container, its probes and metrics flag checked against the contract. */
function checkHealth(c: Container, metricsPort: number): void {
  const args = c.args ?? [];
  const listen = flag(args, '--metrics-listen');
  assert.ok(listen, `${c.name}: --metrics-listen`);
  assert.equal(Number(listen.split(':').at(-1)), metricsPort, `${c.name}: --metrics-listen on ${metricsPort}`);
  assert.ok(!listen.startsWith('127.') && !listen.startsWith('localhost'), `${c.name}: the kubelet probes the pod's address, not loopback`);
  assert.ok(c.ports?.some((p) => p.containerPort === metricsPort), `${c.name}: container port ${metricsPort}`);
  assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', `${c.name}: readiness on /readyz`);
  assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${c.name}: liveness on /healthz`);
  assert.equal(portNumber(c, c.readinessProbe!.httpGet!.port), metricsPort, `${c.name}: readiness probe port`);
  assert.equal(portNumber(c, c.livenessProbe!.httpGet!.port), metricsPort, `${c.name}: liveness probe port`);
}

function checkResources(c: Container): void {
  assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name}: cpu and memory requests`);
  assert.ok(c.resources.limits?.memory, `${c.name}: a memory limit`);
}

describe('deploy/k8s', () => {
  it('the kustomization lists every manifest in deploy/k8s, and each is a valid object without unknown fields', () => {
    const yamls = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    assert.deepEqual([...kustomization.resources].sort(), yamls.sort(), 'kustomization resources = the YAML files in deploy/k8s');
    assert.equal(kustomization.namespace, 'vigil');
    assert.ok(objects.length >= 7, `${objects.length} objects`);
    for (const { file, obj } of objects) {
      const key = `${obj.apiVersion}/${obj.kind}` as keyof typeof MODELS;
      const entry = MODELS[key];
      assert.ok(entry, `${file}: ${key} is not expected here`);
      assert.doesNotThrow(() => new entry.model(obj as never).validate(), `${file}: ${obj.kind} ${obj.metadata.name} is not valid`);
      const unknown: string[] = [];
      unknownFields(obj, join(NM, entry.dts), obj.kind, unknown);
      assert.deepEqual(unknown, [], `${file}: fields the ${obj.kind} schema does not have`);
    }
  });

  it('the field check catches a misspelt field', () => {
    const out: string[] = [];
    unknownFields({ spec: { template: { spec: { containers: [{ name: 'c', readinesProbe: {} }] } } } }, join(NM, MODELS['apps/v1/Deployment'].dts), 'Deployment', out);
    assert.deepEqual(out, ['Deployment.spec.template.spec.containers[0].readinesProbe']);
  });

  it('the controller: 2+ replicas, probes on the metrics port, its ports, resources, config and secrets, a PodDisruptionBudget', () => {
    const d = find('Deployment', 'vigil-controller');
    assert.ok(d.spec.replicas >= 2, 'two replicas or more');
    const pod = d.spec.template;
    assert.ok(selects(d.spec.selector.matchLabels, pod.metadata.labels), 'the Deployment selects its pods');
    const c = (pod.spec.containers as Container[]).find((x) => x.name === 'controller')!;
    assert.ok(c, 'a container named controller');
    checkHealth(c, METRICS_PORT.controller);
    for (const x of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])] as Container[]) checkResources(x);

    // Its listeners are on the ports the container declares, and those are the program's defaults.
    const defaults = compileControllerConfig({ home: '/nonexistent', env: {} });
    const args = c.args ?? [];
    for (const [name, option, port] of [
      ['agents', '--listen', defaults.listen.port],
      ['enrol', '--enrol-listen', defaults.enrolListen.port],
    ] as const) {
      const value = flag(args, option);
      assert.ok(value, `controller: ${option}`);
      assert.equal(Number(value.split(':').at(-1)), port, `${option} on the default port ${port}`);
      assert.equal(c.ports?.find((p) => p.name === name)?.containerPort, port, `container port ${name} = ${port}`);
    }

    // DATABASE_URL from a Secret; VIGIL_HOME filled from the Secret holding the CA and server keys.
    const env = new Map((c.env ?? []).map((e) => [e.name, e]));
    assert.equal(env.get('DATABASE_URL')?.valueFrom?.secretKeyRef?.key, 'DATABASE_URL', 'DATABASE_URL from a Secret');
    assert.equal(env.get('SLACK_TOKEN')?.valueFrom?.secretKeyRef?.name, env.get('DATABASE_URL')!.valueFrom!.secretKeyRef!.name);
    const home = env.get('VIGIL_HOME')?.value;
    assert.ok(home, 'VIGIL_HOME');
    const homeMount = c.volumeMounts?.find((m) => m.mountPath === home);
    assert.ok(homeMount, 'a volume at VIGIL_HOME');
    const init = (pod.spec.initContainers as Container[]).find((x) => x.volumeMounts?.some((m) => m.name === homeMount.name));
    assert.ok(init, 'an init container fills VIGIL_HOME');
    const secretMount = init.volumeMounts!.find((m) => m.name !== homeMount.name)!;
    const secretVolume = (pod.spec.volumes as { name: string; secret?: { secretName: string } }[]).find((v) => v.name === secretMount.name);
    assert.ok(secretVolume?.secret?.secretName, 'from a Secret volume');
    const script = (init.command ?? []).join(' ');
    assert.match(script, new RegExp(`cp -L ${secretMount.mountPath}/\\* ${home}/`), 'the init container copies the Secret into VIGIL_HOME');
    assert.match(script, new RegExp(`chmod 0600 ${home}/\\*`), 'as 0600 files (the controller refuses keys readable by others)');
    for (const m of [...(c.volumeMounts ?? []), ...(init.volumeMounts ?? [])]) {
      assert.ok((pod.spec.volumes as { name: string }[]).some((v) => v.name === m.name), `volume ${m.name} declared`);
    }

    // Config from the ConfigMap, whose keys are the controller's documented environment.
    const cmName = c.envFrom?.find((e) => e.configMapRef)?.configMapRef?.name;
    assert.ok(cmName, 'config from a ConfigMap');
    const cm = find('ConfigMap', cmName);
    const documented = readFileSync(join(REPO, 'controller', 'config.ts'), 'utf8') + readFileSync(join(REPO, 'controller', 'main.ts'), 'utf8');
    for (const k of Object.keys(cm.data ?? {})) assert.ok(documented.includes(k), `ConfigMap key ${k} is not an environment variable the controller reads`);
    assert.equal(pod.spec.securityContext?.runAsNonRoot, true, 'the controller runs as non-root');

    const pdb = find('PodDisruptionBudget', 'vigil-controller');
    assert.ok(selects(pdb.spec.selector.matchLabels, pod.metadata.labels), 'the PodDisruptionBudget selects the controller pods');
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < d.spec.replicas, 'minAvailable leaves room for a voluntary disruption');
  });

  it('plain TCP Services for the agents and for enrolment select the controller pods, and only them', () => {
    const pod = find('Deployment', 'vigil-controller').spec.template;
    const agentPod = find('DaemonSet', 'vigil-agent').spec.template;
    const c = (pod.spec.containers as Container[]).find((x) => x.name === 'controller')!;
    for (const [name, portName] of [
      ['vigil-controller', 'agents'],
      ['vigil-enrol', 'enrol'],
    ] as const) {
      const s = find('Service', name);
      assert.ok(selects(s.spec.selector, pod.metadata.labels), `${name} selects the controller pods`);
      assert.ok(!selects(s.spec.selector, agentPod.metadata.labels), `${name} does not select the agents`);
      assert.equal(s.spec.ports.length, 1);
      const port = s.spec.ports[0];
      assert.equal(port.protocol ?? 'TCP', 'TCP');
      assert.equal(portNumber(c, port.targetPort), c.ports!.find((p) => p.name === portName)!.containerPort, `${name} targets the ${portName} port`);
    }
  });

  it('the agent: a DaemonSet on every node, the host read-only at /host, state on the host, the join string from a Secret', () => {
    const ds = find('DaemonSet', 'vigil-agent');
    const pod = ds.spec.template;
    assert.ok(selects(ds.spec.selector.matchLabels, pod.metadata.labels));
    assert.ok((pod.spec.tolerations as { operator?: string; key?: string }[]).some((t) => t.operator === 'Exists' && !t.key), 'tolerates every taint');
    const volumes = pod.spec.volumes as { name: string; hostPath?: { path: string }; secret?: { secretName: string } }[];
    const c = (pod.spec.containers as Container[]).find((x) => x.name === 'agent')!;
    assert.ok(c, 'a container named agent');
    checkHealth(c, METRICS_PORT.agent);
    for (const x of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])] as Container[]) checkResources(x);
    const args = c.args ?? [];
    assert.equal(args[0], 'run');
    const hostRoot = flag(args, '--host-root');
    assert.equal(hostRoot, '/host');
    const hostMount = c.volumeMounts?.find((m) => m.mountPath === hostRoot);
    assert.equal(hostMount?.readOnly, true, 'the host is mounted read-only');
    assert.equal(volumes.find((v) => v.name === hostMount!.name)?.hostPath?.path, '/', "the host's root");
    const stateDir = flag(args, '--state-dir')!;
    const stateMount = c.volumeMounts?.find((m) => m.mountPath === stateDir);
    assert.ok(stateMount && !stateMount.readOnly, 'a writable state directory');
    assert.ok(volumes.find((v) => v.name === stateMount.name)?.hostPath, 'the state directory is on the host');
    assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'], add: ['DAC_READ_SEARCH'] }, 'one capability: reading every file');

    const enrol = (pod.spec.initContainers as Container[] | undefined)?.find((x) => x.name === 'enrol');
    assert.ok(enrol, 'an enrol init container');
    const script = (enrol.command ?? []).join(' ');
    assert.match(script, new RegExp(`enrol .* --state-dir ${stateDir}`), 'enrols into the same state directory');
    assert.match(script, new RegExp(`-f ${stateDir}/identity.json`), 'only when not enrolled yet');
    assert.ok(enrol.volumeMounts?.some((m) => m.mountPath === stateDir && m.name === stateMount.name));
    const joinMount = enrol.volumeMounts!.find((m) => script.includes(m.mountPath) && m.mountPath !== stateDir)!;
    assert.ok(volumes.find((v) => v.name === joinMount.name)?.secret?.secretName, 'the join string comes from a Secret');
    for (const m of [...(c.volumeMounts ?? []), ...(enrol.volumeMounts ?? [])]) assert.ok(volumes.some((v) => v.name === m.name), `volume ${m.name} declared`);
  });
});
