import type { HoldfastConfig } from './schema.js';
import { HTTP1_ENGINE_ENV, HTTP1_ENGINES, KNOWN_ENV } from './flags.js';
import { closestName } from './suggest.js';

/** A setting that starts but is probably not what was meant: logged once at start, never fatal. */
export interface StartWarning {
  message: string;
  fields: Record<string, unknown>;
}

/**
 * grip.sigKey values that come from examples (schema.ts's default, the README, deploy/holdfast.yaml): a backend
 * that verifies Grip-Sig with one of these trusts anyone who has read the docs.
 */
const EXAMPLE_SIG_KEYS = new Set(['changeme']);

export function startWarnings(config: HoldfastConfig, env: Readonly<Record<string, string | undefined>>, options: { demo: boolean }): StartWarning[] {
  const warnings: StartWarning[] = [];
  for (const name of Object.keys(env).filter((k) => k.startsWith('HOLDFAST_')).sort()) {
    if (name === 'HOLDFAST_PUBLISH_KEY') {
      warnings.push({
        message: 'HOLDFAST_PUBLISH_KEY is read by holdfast publish only; the key this server requires is publish.key in the config file',
        fields: { variable: name },
      });
    } else if (name === HTTP1_ENGINE_ENV && !(HTTP1_ENGINES as readonly string[]).includes(env[name] ?? '')) {
      warnings.push({
        message: `${name}=${JSON.stringify(env[name])} is ignored: it is ${HTTP1_ENGINES.join(' or ')} (the llhttp engine runs)`,
        fields: { variable: name, value: env[name] },
      });
    } else if (!KNOWN_ENV.includes(name)) {
      const suggestion = closestName(name, KNOWN_ENV);
      warnings.push({
        message: `unknown environment variable ${name} is ignored${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`,
        fields: { variable: name, ...(suggestion === undefined ? {} : { suggestion }) },
      });
    }
  }
  // The demo backend on loopback checks no signature; anywhere else the example key is a hole.
  if (!options.demo && EXAMPLE_SIG_KEYS.has(config.grip.sigKey)) {
    warnings.push({
      message: `grip.sigKey is still the example value "${config.grip.sigKey}": anyone can sign requests that backends verifying Grip-Sig will trust; set a secret of your own`,
      fields: { key: 'grip.sigKey' },
    });
  }
  return warnings;
}
