const m = await import("../lib/mod.ts");
console.log(Object.keys(m).length);
