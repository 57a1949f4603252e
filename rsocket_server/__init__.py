"""RSocket server: routes, transports (TCP, WebSocket), auth and the transport guard."""
