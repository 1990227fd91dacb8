/**
 * The Temporal CLI recipes of docs/temporal-cli.md (`temporal workflow start/result/describe/query/
 * show/signal/update/list`) against the server profile: the very file that runs them against the dev
 * server, run again here where `devServerAddress` is the Temporal server on PostgreSQL.
 */
import '../e2e/temporal-cli.test.js';
