// Read-only access to the categories table: the agent loads its own prompt and name.
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';

export interface Category {
  categoryId: string;
  name: string;
  systemPrompt: string;
}

export class CategoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CategoryError';
  }
}

function newClient(region: string): DynamoDBClient {
  return new DynamoDBClient({ region, maxAttempts: 3 });
}

/** The key of the warm-up read: no category has it (ids are slugs). */
const PREWARM_CATEGORY_ID = '__prewarm__';

/**
 * A client with its credentials and endpoint already resolved and one GetItem of `table` behind it
 * (the SDK's lazy set-up and its first request's code path cost more than the GetItem itself, and the
 * connection stays open for the next), for a process that loads a category later on a
 * latency-critical path. The warm-up read's outcome does not matter: its errors are ignored.
 */
export async function preparedClient(region: string, table: string): Promise<DynamoDBClient> {
  const client = newClient(region);
  await client.config.credentials();
  await client.config.endpoint?.();
  try {
    await client.send(
      new GetItemCommand({ TableName: table, Key: { category_id: { S: PREWARM_CATEGORY_ID } }, ProjectionExpression: 'category_id' }),
      { abortSignal: AbortSignal.timeout(5_000) },
    );
  } catch {
    /* only a warm-up */
  }
  return client;
}

/**
 * Loads the category. A missing, disabled or incomplete category is a configuration error
 * (CategoryError). The SDK reads AWS_ENDPOINT_URL_DYNAMODB itself (local stack only).
 * A given `client` is used and left open; otherwise one is made for this call.
 */
export async function loadCategory(opts: {
  table: string;
  region: string;
  categoryId: string;
  client?: DynamoDBClient;
  /** Aborts the read (e.g. a stop request while the category loads). */
  signal?: AbortSignal;
}): Promise<Category> {
  const timeout = AbortSignal.timeout(15_000);
  const client = opts.client ?? newClient(opts.region);
  try {
    const out = await client.send(
      new GetItemCommand({
        TableName: opts.table,
        Key: { category_id: { S: opts.categoryId } },
        ConsistentRead: true,
        ProjectionExpression: 'category_id, #n, system_prompt, enabled',
        ExpressionAttributeNames: { '#n': 'name' },
      }),
      { abortSignal: opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout },
    );
    const item = out.Item;
    if (!item) throw new CategoryError(`unknown category ${opts.categoryId} in table ${opts.table}`);
    if (item.enabled?.BOOL !== true) throw new CategoryError(`category ${opts.categoryId} is disabled`);
    const name = item.name?.S?.trim();
    const systemPrompt = item.system_prompt?.S?.trim();
    if (!name || !systemPrompt) {
      throw new CategoryError(`category ${opts.categoryId} has no name or system_prompt`);
    }
    return { categoryId: opts.categoryId, name, systemPrompt };
  } finally {
    if (!opts.client) client.destroy();
  }
}
