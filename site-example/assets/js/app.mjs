// Loads the site's stats from a JSON file and shows them on the home page.
import { formatCount } from "./format.js";

const target = document.getElementById("stats");
if (target) {
  fetch("/data/stats.json")
    .then((response) => response.json())
    .then((stats) => {
      target.textContent = `${formatCount(stats.pages)} pages, ${formatCount(stats.posts)} post`;
    })
    .catch(() => {
      target.textContent = "";
    });
}
