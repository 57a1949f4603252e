/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the RSocket WebSocket to a local `sportsbook serve` (port 8080 by default).
const backend = process.env.SPORTSBOOK_HTTP ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    target: "es2022",
  },
  server: {
    proxy: {
      "/rsocket": { target: backend, ws: true },
      "/health": { target: backend },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
