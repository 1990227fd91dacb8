/**
 * The Web UI as an operator sees it, in headless Chromium, served by the server profile's UI server
 * (ui-server v2.42.1) against the Temporal server on PostgreSQL: the very file that checks the dev
 * server's built-in UI, run again here. Screenshots: test-results/ui/server-profile/.
 */
import '../e2e/web-ui.test.js';
