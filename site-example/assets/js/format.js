export function formatCount(n) {
  return new Intl.NumberFormat("en").format(n);
}
