import { z } from 'zod';
import { errorSchema } from '../api-schemas.js';
import { overviewSchema, type OverviewReader } from '../overview.js';
import { route, type AnyRoute } from '../route.js';

export function overviewRoutes(options: { overview: OverviewReader }): AnyRoute[] {
  const overview = route({
    method: 'GET',
    url: '/v1/overview',
    operationId: 'getOverview',
    role: 'read',
    tag: 'dashboard',
    summary:
      'What the dashboard shows, in one reading: per queue the jobs by state, completed and failed per minute over the last 15 minutes, the newest batches and the dead letters by group; and every limit key.',
    query: z.strictObject({}),
    responses: {
      200: { description: 'the overview', schema: overviewSchema },
      503: { description: 'Redis is not answering', schema: errorSchema },
    },
    async handler(request) {
      const reading = await options.overview.read();
      return { ...reading, viewer: { role: request.role! } };
    },
  });
  return [overview];
}
