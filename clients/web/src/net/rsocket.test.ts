/**
 * SETUP and request metadata are byte for byte what clients/client.py sends
 * (rsocket-py CompositeMetadata with RoutingMetadata / AuthenticationBearer).
 */
import { describe, expect, it } from "vitest";
import { DATA_MIME, METADATA_MIME, SportsbookError, encodeBody, routeMetadata, setupMetadata } from "./rsocket";

describe("composite metadata, as the Python client builds it", () => {
  it("routes every request with message/x.rsocket.routing.v0", () => {
    // clients.client.route_metadata("odds.stream").hex()
    expect(routeMetadata("odds.stream").toString("hex")).toBe("fe00000c0b6f6464732e73747265616d");
    expect(routeMetadata("bets.place").toString("hex")).toBe("fe00000b0a626574732e706c616365");
  });

  it("puts the bearer token in the SETUP with message/x.rsocket.authentication.v0", () => {
    // clients.client.setup_metadata("demo-alice-token").hex()
    expect(setupMetadata("demo-alice-token")?.toString("hex")).toBe("fc0000118164656d6f2d616c6963652d746f6b656e");
    expect(setupMetadata(null)).toBeUndefined(); // anonymous: no SETUP metadata at all
  });

  it("uses the MIME types PROTOCOL.md names", () => {
    expect(DATA_MIME).toBe("application/json");
    expect(METADATA_MIME).toBe("message/x.rsocket.composite-metadata.v0");
  });

  it("drops null fields from request bodies, like the Python client's _encode", () => {
    expect(JSON.parse(encodeBody({ resume: null, marketIds: ["1.2"], sport: undefined }).toString())).toEqual({ marketIds: ["1.2"] });
  });

  it("reads the server's {code, message} error body", () => {
    const error = SportsbookError.from(new Error('{"code":"UNAUTHENTICATED","message":"unknown token"}'));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(SportsbookError.from(new Error("socket closed")).code).toBe("CONNECTION");
  });
});
