#!/usr/bin/env node
// A Slack stand-in for trying alerts by hand: `npm run slack-stand-in`, then start the controller
// with SLACK_API_URL set to the printed URL. Every message the controller posts is printed here.
import { startSlackStandIn } from './slack-stand-in.js';

const slack = await startSlackStandIn({
  onPost: (p) => process.stdout.write(`[slack ${p.params.channel ?? ''}] ${p.params.text ?? JSON.stringify(p.params)}\n`),
  port: Number(process.env.PORT ?? 0),
});
process.stdout.write(`Slack stand-in listening. Start the controller with:\n  SLACK_TOKEN=xoxb-local SLACK_CHANNEL='#fim' SLACK_API_URL=${slack.apiUrl}\n`);
process.once('SIGINT', () => void slack.close().then(() => process.exit(0)));
