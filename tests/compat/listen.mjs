// Connects to helvino-realtime with the stock socket.io-client as one organization and prints every
// event it receives, one line each: the event name, then its data as JSON. scripts/listen runs it.
import { parseArgs } from 'node:util';

import { describeConnectError, isRejectedByServer } from './connect-error.mjs';

const usage = `Usage: scripts/listen --key KEY [--url URL] [--transport TRANSPORT]

Prints the live events of the organization that KEY belongs to, one line each on standard output:
the event name, then its data as JSON. Connection status goes to standard error.

Options:
  --key KEY              The organization's key (the demo organization's is "demo").
  --url URL              Where to connect: the gateway, which forwards /socket.io/, or helvino-realtime
                         itself. Default: http://$HELVINO_HTTP_LISTEN, else http://127.0.0.1:4000.
  --transport TRANSPORT  default: HTTP long-polling, then an upgrade to WebSocket (the client's default);
                         websocket: WebSocket only; polling: HTTP long-polling only.
  --help                 Print this help and exit.

Exit status: 1 when the connection is rejected (connect_error) or closed by the server,
2 for bad usage. Ctrl-C stops it.`;

const transportOptions = {
    default: {},
    websocket: { transports: ['websocket'] },
    polling: { transports: ['polling'] },
};

function log(line) {
    process.stderr.write(`listen: ${line}\n`);
}

function failUsage(message) {
    process.stderr.write(`listen: ${message}\n${usage.split('\n')[0]}\nscripts/listen --help describes the options.\n`);
    process.exit(2);
}

function parseOptions() {
    let parsed;
    try {
        parsed = parseArgs({
            options: {
                key: { type: 'string' },
                url: { type: 'string' },
                transport: { type: 'string', default: 'default' },
                help: { type: 'boolean', short: 'h' },
            },
        });
    } catch (error) {
        failUsage(error.message);
    }
    const options = parsed.values;
    if (options.help) {
        process.stdout.write(`${usage}\n`);
        process.exit(0);
    }
    if (options.key === undefined || options.key === '') {
        failUsage('missing --key: give the organization key, for example --key demo');
    }
    if (!Object.hasOwn(transportOptions, options.transport)) {
        failUsage(`invalid --transport "${options.transport}": expected default, websocket or polling`);
    }
    options.url ??= `http://${process.env.HELVINO_HTTP_LISTEN || '127.0.0.1:4000'}`;
    let url;
    try {
        url = new URL(options.url);
    } catch {
        failUsage(`invalid --url "${options.url}": expected an address such as http://127.0.0.1:4000`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        failUsage(`invalid --url "${options.url}": expected an http:// or https:// address`);
    }
    return options;
}

const options = parseOptions();
// Imported after the arguments are checked, so that --help and usage errors work without it.
const { io } = await import('socket.io-client');

log(`connecting to ${options.url} (transport: ${options.transport})`);
const socket = io(options.url, { auth: { orgKey: options.key }, ...transportOptions[options.transport] });

// socket.io-client 4.8 can emit disconnect for a connection that never connected: when the server
// rejects the CONNECT and ends the session in one poll response, the close is handled before the
// rejection. Only a disconnect after a connect is reported.
let connected = false;

socket.on('connect', () => {
    connected = true;
    const engine = socket.io.engine;
    log(`connected: socket id ${socket.id}, transport ${engine.transport.name}; waiting for events, Ctrl-C stops`);
    engine.once('upgrade', (transport) => log(`transport upgraded to ${transport.name}`));
});

socket.on('connect_error', (error) => {
    if (isRejectedByServer(error)) {
        log(`connection rejected by the server: ${error.message}`);
    } else {
        log(`connecting to ${options.url} failed: ${describeConnectError(error)}. Check that Helvino runs there (scripts/run).`);
    }
    process.exit(1);
});

socket.on('disconnect', (reason) => {
    if (!connected || reason === 'io client disconnect') {
        return;
    }
    connected = false;
    if (reason === 'io server disconnect') {
        log('disconnected by the server');
        process.exit(1);
    }
    // The client reconnects by itself after other reasons, such as a lost connection.
    log(`disconnected (${reason}); reconnecting`);
});

socket.onAny((event, ...args) => {
    process.stdout.write(`${[event, ...args.map((arg) => JSON.stringify(arg))].join(' ')}\n`);
});

process.on('SIGINT', () => {
    socket.close();
    process.exit(0);
});
