// Repository names and tags as the OCI distribution spec defines them. Invalid input is refused, never normalised.
import { RegistryError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Distribution caps the whole name at 255 characters; so do we. */
const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** The name, if it is a valid repository (app) name; the one refusal every route and the registry give otherwise. */
export function requireRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
