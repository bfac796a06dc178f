// Describes a socket.io-client connect_error in one line. Transport errors carry the HTTP status
// or the underlying error in `description`, while a rejection by the server has only its message.
export function describeConnectError(error) {
    const cause = error.description;
    if (cause === undefined) {
        return error.message;
    }
    if (cause === 0) {
        // XMLHttpRequest reports status 0 when no HTTP response arrived, for example when the
        // connection was refused.
        return `${error.message} (no HTTP response)`;
    }
    if (typeof cause === 'number') {
        return `${error.message} (HTTP status ${cause})`;
    }
    return `${error.message} (${cause?.message ?? String(cause)})`;
}

// Tells whether a connect_error is the server's rejection of the CONNECT packet: socket.io-client
// sets `data` only on the error that it makes from a CONNECT_ERROR packet.
export function isRejectedByServer(error) {
    return Object.hasOwn(error, 'data');
}
