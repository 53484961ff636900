import { readFileSync } from 'node:fs';
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  printSchema,
} from 'graphql';
import { describe, expect, test } from 'vitest';
import { schema } from '../src/schema/index.js';

const contractSdl = readFileSync(new URL('./fixtures/api-contract.graphql', import.meta.url), 'utf8');
// The contract describes connections and mutation result unions in comments; stand-ins make it
// buildable, and those types are checked by the dedicated tests below instead.
const described = [...new Set(contractSdl.match(/\b\w+(Connection|Result)\b/g))].filter(
  (name) => !new RegExp(`(type|union|scalar) ${name}\\b`).test(contractSdl),
);
const contract = buildSchema(`${contractSdl}\n${described.map((name) => `scalar ${name}`).join('\n')}`);

/** Contract types and fields still to build (none now): everything in the contract must exist. */
const NOT_YET_BUILT = new Set<string>([]);
const NOT_YET_BUILT_FIELDS: Record<string, Set<string>> = {};
/**
 * Enum values this API adds to the contract's, each for a reason: every contract value must still
 * exist, and nothing beyond the contract's values and these may appear.
 */
const ADDED_ENUM_VALUES: Record<string, string[]> = {
  // The stages of stopApp and resumeApp (issue 14): the contract only knew STOPPED.
  AppStage: ['STOPPING', 'RESUMING'],
  // Stop and resume are tasks like the other operations (issue 14).
  TaskType: ['STOP', 'RESUME'],
  // A gone instance's components leave the runtime in cluster mode (runtime/instance-sweep.ts).
  RuntimeEventKind: ['COMPONENT_REMOVED'],
  // A task over MAX_ACTIVE_TASKS_PER_USER: the mutations that submit one return LimitExceededError.
  ErrorCode: ['LIMIT_EXCEEDED'],
};

describe('the printed schema', () => {
  test('schema.graphql is what the code builds (run `npm run schema:print` after schema changes)', () => {
    expect(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')).toBe(`${printSchema(schema)}\n`);
  });

  test('every type, field, argument and enum value has a description', () => {
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name)) continue;
      if (!type.description) missing.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description) missing.push(`${type.name}.${field.name}`);
          for (const arg of 'args' in field ? field.args : []) {
            if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
          }
        }
      }
      if (isEnumType(type)) {
        for (const value of type.getValues()) if (!value.description) missing.push(`${type.name}.${value.name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('the API contract (reference/api-contract.graphql)', () => {
  const built = Object.values(contract.getTypeMap()).filter(
    (type) => !type.name.startsWith('__') && !NOT_YET_BUILT.has(type.name) && !described.includes(type.name),
  );

  test.each(built.map((type) => [type.name, type] as const))(
    "%s exists with the contract's fields and types",
    (name, expected) => {
      const actual = schema.getType(name);
      expect(actual, `type ${name}`).toBeDefined();
      expect(actual?.constructor.name).toBe(expected.constructor.name);
      if (isEnumType(expected) && isEnumType(actual)) {
        expect(
          actual
            .getValues()
            .map((v) => v.name)
            .sort(),
        ).toEqual([...expected.getValues().map((v) => v.name), ...(ADDED_ENUM_VALUES[name] ?? [])].sort());
      }
      if (
        (isObjectType(expected) || isInterfaceType(expected) || isInputObjectType(expected)) &&
        actual &&
        'getFields' in actual
      ) {
        const actualFields = actual.getFields();
        for (const [fieldName, field] of Object.entries(expected.getFields())) {
          if (NOT_YET_BUILT_FIELDS[name]?.has(fieldName)) continue;
          const mine = actualFields[fieldName];
          expect(mine, `${name}.${fieldName}`).toBeDefined();
          expect(String(mine?.type), `${name}.${fieldName} type`).toBe(String(field.type));
          for (const arg of 'args' in field ? field.args : []) {
            const myArg = mine && 'args' in mine ? mine.args.find((a) => a.name === arg.name) : undefined;
            expect(String(myArg?.type), `${name}.${fieldName}(${arg.name})`).toBe(String(arg.type));
          }
        }
        if (isObjectType(expected) && isObjectType(actual)) {
          expect(actual.getInterfaces().map((i) => i.name)).toEqual(
            expect.arrayContaining(expected.getInterfaces().map((i) => i.name)),
          );
        }
      }
      expect(isUnionType(actual)).toBe(isUnionType(expected));
    },
  );

  test('each mutation returns <Name>Result = <Name>Success { task | payment } | the error types', () => {
    for (const name of [
      'InstallApp',
      'UpgradeApp',
      'UninstallApp',
      'CloneApp',
      'StopApp',
      'ResumeApp',
      'CancelTask',
      'RetryTask',
    ]) {
      expectResultUnion(name, 'task', 'Task!');
    }
    for (const name of [
      'PurchaseApp',
      'RestorePurchase',
      'StartFrontendPayment',
      'SubmitPaymentTransaction',
      'SubmitSignature',
      'SignatureCallback',
    ]) {
      expectResultUnion(name, 'payment', 'Payment!');
    }
  });

  function expectResultUnion(name: string, dataField: string, dataType: string) {
    const union = schema.getType(`${name}Result`);
    expect(isUnionType(union), `${name}Result`).toBe(true);
    if (!isUnionType(union)) return;
    const members = union.getTypes().map((type) => type.name);
    const errors = [
      'NotFoundError',
      'ValidationError',
      'ConflictError',
      'ForbiddenError',
      'InvalidStateError',
      'UpstreamError',
    ];
    expect(members).toEqual(expect.arrayContaining([`${name}Success`, ...errors]));
    const success = schema.getType(`${name}Success`);
    expect(isObjectType(success) && String(success.getFields()[dataField]?.type)).toBe(dataType);
    for (const member of union.getTypes().filter((type) => type.name.endsWith('Error'))) {
      expect(member.getInterfaces().map((i) => i.name)).toContain('Error');
    }
  }

  test('connections follow the Relay shape for App, Task, Payment, HistoryRecord and CatalogApp', () => {
    for (const node of ['App', 'Task', 'Payment', 'HistoryRecord', 'CatalogApp']) {
      const connection = schema.getType(`${node}Connection`);
      expect(isObjectType(connection), `${node}Connection`).toBe(true);
      if (!isObjectType(connection)) continue;
      const fields = connection.getFields();
      expect(String(fields.totalCount?.type)).toBe('Int!');
      expect(String(fields.pageInfo?.type)).toBe('PageInfo!');
      expect(fields.edges && getNamedType(fields.edges.type).name).toBe(`${node}Edge`);
    }
  });
});
