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

/**
 * Loads the category. A missing, disabled or incomplete category is a configuration error
 * (CategoryError). The SDK reads AWS_ENDPOINT_URL_DYNAMODB itself (local stack only).
 */
export async function loadCategory(opts: { table: string; region: string; categoryId: string; signal?: AbortSignal }): Promise<Category> {
  const timeout = AbortSignal.timeout(15_000);
  const client = new DynamoDBClient({ region: opts.region, maxAttempts: 3 });
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
    client.destroy();
  }
}
