/**
 * Checks a synthesized template against the CloudFormation resource schemas the CDK CLI ships (the aws-cdk
 * package's db.json.gz, the service spec `cdk diff` and `cdk migrate` read): every resource type exists, every
 * property name is one the type has, required properties are present, and values have the schema's types
 * (string, integer, boolean, arrays, maps, tags, nested property types, allowed values). Intrinsic functions
 * (Ref, Fn::GetAtt, Fn::Join, ...) stand for a value of any type, as CloudFormation resolves them at deploy time.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** A type in the spec: primitives, collections, a reference to a named property type, or a union. */
type SpecType =
  | { readonly type: 'string' | 'number' | 'integer' | 'boolean' | 'json' | 'tag' | 'date-time' | 'null' }
  | { readonly type: 'array' | 'map'; readonly element: SpecType }
  | { readonly type: 'ref'; readonly reference: { readonly $ref: string } }
  | { readonly type: 'union'; readonly types: readonly SpecType[] };

interface SpecProperty {
  readonly type: SpecType & { readonly allowedValues?: readonly string[] };
  readonly required?: boolean;
  readonly previousTypes?: readonly SpecType[];
}

interface SpecResource {
  readonly cloudFormationType: string;
  readonly properties: Readonly<Record<string, SpecProperty>>;
}

interface SpecTypeDefinition {
  readonly $id: string;
  readonly name: string;
  readonly properties: Readonly<Record<string, SpecProperty>>;
}

export interface ResourceSchemas {
  readonly resources: ReadonlyMap<string, SpecResource>;
  readonly types: ReadonlyMap<string, SpecTypeDefinition>;
  /** The aws-cdk CLI version whose database this is. */
  readonly source: string;
}

/** Loads the database the installed CDK CLI ships. */
export function loadResourceSchemas(): ResourceSchemas {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('aws-cdk/package.json');
  const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
  const db = JSON.parse(gunzipSync(readFileSync(join(dirname(packageJson), 'db.json.gz'))).toString('utf8')) as {
    schema: {
      resource: { entities: SpecResource[] };
      typeDefinition: { entities: SpecTypeDefinition[] };
    };
  };
  return {
    resources: new Map(db.schema.resource.entities.map((r) => [r.cloudFormationType, r])),
    types: new Map(db.schema.typeDefinition.entities.map((t) => [t.$id, t])),
    source: `aws-cdk ${version} db.json.gz`,
  };
}

const RESOURCE_KEYS = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'Condition',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'Metadata',
  'UpdatePolicy',
  'CreationPolicy',
]);

const INTRINSICS = new Set([
  'Ref',
  'Condition',
  'Fn::GetAtt',
  'Fn::Join',
  'Fn::Sub',
  'Fn::Select',
  'Fn::Split',
  'Fn::If',
  'Fn::ImportValue',
  'Fn::FindInMap',
  'Fn::Base64',
  'Fn::GetAZs',
  'Fn::Cidr',
  'Fn::Length',
  'Fn::ToJsonString',
]);

/** Types CloudFormation itself does not define: the CDK's metadata resource and custom resources. */
const UNCHECKED_TYPE = /^(AWS::CDK::Metadata|Custom::.+|AWS::CloudFormation::CustomResource)$/;

/** Every problem found, as `LogicalId.Path: what is wrong`; empty when the template passes. */
export function checkTemplate(template: unknown, schemas: ResourceSchemas): string[] {
  const problems: string[] = [];
  const resources = (template as { Resources?: Record<string, Record<string, unknown>> }).Resources ?? {};
  for (const [id, resource] of Object.entries(resources)) {
    for (const key of Object.keys(resource)) {
      if (!RESOURCE_KEYS.has(key)) problems.push(`${id}: unknown resource attribute ${key}`);
    }
    const type = String(resource.Type);
    if (UNCHECKED_TYPE.test(type)) continue;
    const spec = schemas.resources.get(type);
    if (!spec) {
      problems.push(`${id}: unknown resource type ${type}`);
      continue;
    }
    const properties = resource.Properties ?? {};
    if (!isObject(properties)) {
      problems.push(`${id}.Properties: must be an object`);
      continue;
    }
    checkObject(`${id}`, properties, spec.properties, schemas, problems);
  }
  return problems;
}

function checkObject(
  path: string,
  value: Record<string, unknown>,
  properties: Readonly<Record<string, SpecProperty>>,
  schemas: ResourceSchemas,
  problems: string[],
): void {
  for (const [name, property] of Object.entries(properties)) {
    if (property.required && !(name in value)) problems.push(`${path}: missing required property ${name}`);
  }
  for (const [name, item] of Object.entries(value)) {
    const property = properties[name];
    if (!property) {
      problems.push(`${path}: unknown property ${name} (known: ${Object.keys(properties).sort().join(', ')})`);
      continue;
    }
    const candidates = [property.type, ...(property.previousTypes ?? [])];
    const attempts = candidates.map((type) => {
      const found: string[] = [];
      checkValue(`${path}.${name}`, item, type, schemas, found);
      return found;
    });
    const fits = attempts.find((found) => found.length === 0);
    if (!fits) problems.push(...attempts[0]!);
    else if (property.type.allowedValues && typeof item === 'string' && !property.type.allowedValues.includes(item)) {
      problems.push(`${path}.${name}: ${JSON.stringify(item)} is not one of ${property.type.allowedValues.join(', ')}`);
    }
  }
}

function checkValue(path: string, value: unknown, type: SpecType, schemas: ResourceSchemas, problems: string[]): void {
  if (isIntrinsic(value)) return;
  switch (type.type) {
    case 'json':
      return;
    case 'string':
    case 'date-time':
      if (typeof value !== 'string') problems.push(`${path}: expected a string, got ${describe(value)}`);
      return;
    case 'number':
      if (typeof value !== 'number') problems.push(`${path}: expected a number, got ${describe(value)}`);
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value))
        problems.push(`${path}: expected an integer, got ${describe(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${path}: expected a boolean, got ${describe(value)}`);
      return;
    case 'null':
      if (value !== null) problems.push(`${path}: expected null, got ${describe(value)}`);
      return;
    case 'tag':
      if (!isObject(value) || typeof value.Key !== 'string' || !('Value' in value) || Object.keys(value).length !== 2)
        problems.push(`${path}: expected a tag {Key, Value}, got ${describe(value)}`);
      return;
    case 'array':
      if (!Array.isArray(value)) {
        problems.push(`${path}: expected an array, got ${describe(value)}`);
        return;
      }
      value.forEach((item, i) => checkValue(`${path}[${i}]`, item, type.element, schemas, problems));
      return;
    case 'map':
      if (!isObject(value)) {
        problems.push(`${path}: expected a map, got ${describe(value)}`);
        return;
      }
      for (const [key, item] of Object.entries(value))
        checkValue(`${path}.${key}`, item, type.element, schemas, problems);
      return;
    case 'ref': {
      const definition = schemas.types.get(type.reference.$ref);
      if (!definition) throw new Error(`the schema database has no type ${type.reference.$ref} (at ${path})`);
      if (!isObject(value)) {
        problems.push(`${path}: expected a ${definition.name} object, got ${describe(value)}`);
        return;
      }
      checkObject(path, value, definition.properties, schemas, problems);
      return;
    }
    case 'union': {
      const attempts = type.types.map((member) => {
        const found: string[] = [];
        checkValue(path, value, member, schemas, found);
        return found;
      });
      if (!attempts.some((found) => found.length === 0)) problems.push(...(attempts[0] ?? []));
      return;
    }
  }
}

function isIntrinsic(value: unknown): boolean {
  if (!isObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && INTRINSICS.has(keys[0]!);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
