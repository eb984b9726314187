import { describe, expect, it } from "vitest";
import { EndpointTemplater, isIdSegment, OVERFLOW_ENDPOINT, templatePath } from "../src/index.js";
import { TemplateIndex } from "../src/metrics/templating.js";

describe("isIdSegment", () => {
  it.each([
    "123",
    "0",
    "9f1c2e4b",
    "9f1c2e4b7a8d6c5e",
    "deadbeefdeadbeef",
    "507f1f77bcf86cd799439011", // Mongo ObjectId
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400E29B41D4A716446655440000",
    "2024-01-31",
    "1.2.3",
    "12,5",
    "order12345",
    "v20231201",
    "01HF8Z6G5Y4X3W2V1T0S9R8Q7P", // ULID
    "dGhpcyBpcyBhIHRva2VuMTIz", // base64url token
    "john@example.com",
    "x".repeat(65),
  ])("%s is an id", (s) => {
    expect(isIdSegment(s)).toBe(true);
  });

  it.each([
    "users",
    "v1",
    "v2beta1",
    "api",
    "x86_64",
    "oauth2",
    "my-blog-post-title",
    "checkout",
    "deadbeef",
    "cafe",
    "index.html",
    "",
  ])("%s is not an id", (s) => {
    expect(isIdSegment(s)).toBe(false);
  });
});

describe("templatePath", () => {
  it("replaces numeric, UUID, hex and other id-like segments with {id}", () => {
    expect(templatePath("/users/123/orders/9f1c2e4b7a8d")).toBe("/users/{id}/orders/{id}");
    expect(templatePath("/api/v1/items/550e8400-e29b-41d4-a716-446655440000/reviews")).toBe(
      "/api/v1/items/{id}/reviews",
    );
    expect(templatePath("/files/d41d8cd98f00b204e9800998ecf8427e/download")).toBe("/files/{id}/download");
    expect(templatePath("/reports/2024-01-31")).toBe("/reports/{id}");
    expect(templatePath("/accounts/john@example.com/settings")).toBe("/accounts/{id}/settings");
  });

  it("keeps route words and drops query, fragment, matrix params and empty segments", () => {
    expect(templatePath("/")).toBe("/");
    expect(templatePath("")).toBe("/");
    expect(templatePath("/health")).toBe("/health");
    expect(templatePath("/search?q=secret&page=2")).toBe("/search");
    expect(templatePath("/docs#section-2")).toBe("/docs");
    expect(templatePath("/cart;jsessionid=ABC123DEF456/items/7")).toBe("/cart/items/{id}");
    expect(templatePath("//a///b/")).toBe("/a/b");
    expect(templatePath("http://example.com/users/42?x=1")).toBe("/users/{id}");
  });

  it("templates non-path endpoints (topics, gRPC methods) segment by segment", () => {
    expect(templatePath("/shop.v1.Orders/Create")).toBe("/shop.v1.Orders/Create");
    expect(templatePath("devices/12345/telemetry")).toBe("devices/{id}/telemetry");
    expect(templatePath("orders")).toBe("orders");
    expect(templatePath("*")).toBe("*");
  });

  it("bounds segments and length", () => {
    const deep = `/${Array.from({ length: 40 }, (_, i) => `s${String.fromCharCode(97 + (i % 26))}`).join("/")}`;
    const t = templatePath(deep, 16);
    expect(t.split("/").length - 1).toBe(17);
    expect(t.endsWith("/{...}")).toBe(true);
    const long = `/${Array.from({ length: 12 }, () => "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop").join("/")}`;
    const l = templatePath(long, 16, 128);
    expect(l.length).toBeLessThanOrEqual(128);
    expect(l.endsWith("/{...}")).toBe(true);
  });
});

describe("EndpointTemplater", () => {
  it("collapses ids to one template per route", () => {
    const t = new EndpointTemplater();
    const orders = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      orders.add(t.template("svc", `/users/${i}/orders/${(0x10000000 + i * 7919).toString(16)}`));
    }
    expect([...orders]).toEqual(["/users/{id}/orders/{id}"]);
    expect(new Set(Array.from({ length: 100 }, (_, i) => t.template("svc", `/users/${i}`)))).toEqual(
      new Set(["/users/{id}"]),
    );
    expect(t.stats()).toEqual({ services: 1, templates: 2, overflowed: 0 });
  });

  it("caps distinct templates per service; the rest go to the overflow bucket, counted", () => {
    const t = new EndpointTemplater({ maxTemplatesPerService: 5 });
    const got = ["a", "b", "c", "d", "e", "f", "g"].map((w) => t.template("svc", `/${w}`));
    expect(got).toEqual(["/a", "/b", "/c", "/d", "/e", OVERFLOW_ENDPOINT, OVERFLOW_ENDPOINT]);
    // known templates still map to themselves after the cap
    expect(t.template("svc", "/c")).toBe("/c");
    // the cap is per service
    expect(t.template("other", "/f")).toBe("/f");
    expect(t.stats()).toEqual({ services: 2, templates: 6, overflowed: 2 });
  });

  it("bounds services and total templates", () => {
    const t = new EndpointTemplater({ maxServices: 2, maxTemplatesPerService: 3, maxTotalTemplates: 5 });
    expect(t.template("s1", "/a")).toBe("/a");
    expect(t.template("s2", "/a")).toBe("/a");
    // s3 and s4 share the overflow set
    expect(t.template("s3", "/x")).toBe("/x");
    expect(t.template("s4", "/x")).toBe("/x");
    expect(t.template("s1", "/b")).toBe("/b");
    expect(t.template("s1", "/c")).toBe("/c");
    // total cap (5) reached
    expect(t.template("s2", "/b")).toBe(OVERFLOW_ENDPOINT);
    expect(t.stats()).toEqual({ services: 3, templates: 5, overflowed: 1 });
  });
});

describe("TemplateIndex", () => {
  /** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
  const prng = (seed: number) => {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };
  // segments near every isIdSegment rule and its length thresholds, and characters the scan treats apart
  const SEGMENTS = [
    "users",
    "v1",
    "api",
    "x86_64",
    "oauth2",
    "index.html",
    "deadbeef",
    "cafe",
    "CAFE",
    "BEEF1",
    "beef1234",
    "Beef1234",
    "12",
    "0",
    "2024-01-31",
    "1.2.3",
    "1-a",
    "1x",
    "-1",
    "12,5",
    "1+2~3",
    "1_2:3",
    "order12345",
    "v2023",
    "v20231201",
    "a@b",
    "@",
    "9f1c2e4b7a8d6c5e",
    "9f1c2e4b7a8d6c5",
    "ABCDEFabcdef0123",
    "abcdefabcdefabcd",
    "dGhpcyBpcyBhIHRva2VuMTIz",
    "01HF8Z6G5Y4X3W2V1T0S9R8Q7P",
    "my-blog-post-title-2",
    "550e8400-e29b-41d4-a716-446655440000",
    "x".repeat(64),
    "x".repeat(65),
    "%20",
    "a b",
    "é",
    "",
    "",
    "a;b=1",
    "q?x=1",
    "f#frag",
    "http:",
    "https:",
  ];

  it("answers exactly what templatePath does, over random paths and caps, as one string per template", () => {
    for (const [maxSegments, maxLength] of [
      [16, 256],
      [3, 256],
      [16, 24],
      [1, 16],
    ] as const) {
      const index = new TemplateIndex(maxSegments, maxLength);
      const rnd = prng(maxSegments * 1000 + maxLength);
      const seen = new Map<string, string>();
      for (let i = 0; i < 20_000; i++) {
        const n = Math.floor(rnd() * 7);
        const segs = Array.from({ length: n }, () => SEGMENTS[Math.floor(rnd() * SEGMENTS.length)] as string);
        const lead = rnd() < 0.8 ? "/" : rnd() < 0.5 ? "" : rnd() < 0.5 ? "http://host:80/" : "//";
        const trail = rnd() < 0.1 ? "/" : "";
        const path = `${lead}${segs.join("/")}${trail}`;
        const want = templatePath(path, maxSegments, maxLength);
        const got = index.templateOf(path);
        expect(got, path).toBe(want);
        // the same template, whatever endpoint it came from, is the same string object
        const first = seen.get(want);
        if (first === undefined) seen.set(want, got);
        else expect(Object.is(first, got)).toBe(true);
      }
    }
  });

  it("answers simple paths from the index: templatePath runs once per template", () => {
    const index = new TemplateIndex();
    const rnd = prng(7);
    const simple = SEGMENTS.filter((s) => s !== "" && !/[;?#:]/.test(s));
    const templates = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const segs = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => simple[Math.floor(rnd() * simple.length)]);
      templates.add(index.templateOf(`/${segs.join("/")}`));
    }
    expect(templates.size).toBeGreaterThan(100);
    expect(index.slowCalls).toBe(templates.size);
  });

  it("tells apart endpoints whose segments differ only where the hash could collide", () => {
    const index = new TemplateIndex();
    expect(index.templateOf("/a/b")).toBe("/a/b");
    expect(index.templateOf("/ab")).toBe("/ab");
    expect(index.templateOf("a/b")).toBe("a/b");
    expect(index.templateOf("/a/123")).toBe("/a/{id}");
    expect(index.templateOf("/a/{id}")).toBe("/a/{id}");
    expect(index.templateOf("/a/b/")).toBe("/a/b");
    expect(index.templateOf("//a//b")).toBe("/a/b");
    expect(index.templateOf("/")).toBe("/");
    expect(index.templateOf("")).toBe("/");
  });
});
