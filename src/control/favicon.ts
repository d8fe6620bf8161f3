/**
 * Holdfast's icon, for the pages it serves (the dashboard, the demo): inline as a data: URL, so a browser
 * asks for no /favicon.ico, and as bytes for a client that asks anyway.
 */
export const FAVICON_SVG =
  "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#175'/><path d='M4 4v8M12 4v8M4 8h8' stroke='#fff' stroke-width='2'/></svg>";

export const FAVICON_DATA_URL = `data:image/svg+xml,${encodeURIComponent(FAVICON_SVG)}`;
