import { AppError } from "@simbatch/errors";
import type { RequestHandler, Router } from "express";

type Method = "get" | "post" | "patch" | "delete";

/**
 * Registers routes and remembers their paths, so an unmatched request gets 405
 * when the path exists under another method, else 404 (both before auth).
 */
export class RouteTable {
  private readonly known: { re: RegExp; methods: Set<string> }[] = [];

  constructor(private readonly router: Router) {}

  add(method: Method, path: string, ...handlers: RequestHandler[]): void {
    (this.router[method] as (p: string, ...h: RequestHandler[]) => void).call(this.router, path, ...handlers);
    const pattern = path.replace(/\*[A-Za-z_]+/g, ".+").replace(/:[A-Za-z_]+/g, "[^/]+");
    const re = new RegExp(`^${pattern}/?$`);
    const entry = this.known.find((k) => k.re.source === re.source);
    if (entry) entry.methods.add(method.toUpperCase());
    else this.known.push({ re, methods: new Set([method.toUpperCase()]) });
  }

  fallback(): RequestHandler {
    return (req, res, next) => {
      const methods = this.known.filter((k) => k.re.test(req.path)).flatMap((k) => [...k.methods]);
      if (methods.length > 0) {
        res.setHeader("Allow", [...new Set(methods)].join(", "));
        return next(new AppError("MethodNotAllowed", { message: `${req.method} is not allowed on ${req.path}; allowed: ${[...new Set(methods)].join(", ")}` }));
      }
      next(new AppError("NotFound", { message: `No route for ${req.method} ${req.path}` }));
    };
  }
}
