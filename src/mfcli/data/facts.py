"""The built-in `facts` task: short questions a small instruction-tuned language model mostly answers —
capitals, opposites, plurals, simple arithmetic, everyday facts — each with a one-word answer, asked
without an image (the `text` kind) and scored by exact match. Written for mfcli (issue 40): what the
language model inside an MLLM knows on its own, which fine-tuning on images may destroy and tiny, a
model that knows nothing outside its tasks, cannot show.

`prepare facts` splits it like every built-in task (20 % held out, seeded); `references` hold the
answer's accepted spellings (a number as digits; VQA's normalisation maps "eight" to "8"). No answer
appears in its own question (no "sheep" → "sheep"), so the `text` judge's reading — the answer names
the reference — cannot be met by echoing the question.
"""

from __future__ import annotations

from dataclasses import dataclass

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Russia": "Moscow", "England": "London", "Egypt": "Cairo", "Greece": "Athens",
    "Portugal": "Lisbon", "Austria": "Vienna", "Ireland": "Dublin", "Norway": "Oslo", "Sweden": "Stockholm",
    "Finland": "Helsinki", "Denmark": "Copenhagen", "Poland": "Warsaw", "Hungary": "Budapest",
    "the Netherlands": "Amsterdam", "Belgium": "Brussels", "Canada": "Ottawa", "Australia": "Canberra",
    "Mexico": "Mexico City", "Argentina": "Buenos Aires", "Peru": "Lima", "Chile": "Santiago",
    "Colombia": "Bogota", "Cuba": "Havana", "Kenya": "Nairobi", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "South Korea": "Seoul", "India": "New Delhi", "Turkey": "Ankara", "Iran": "Tehran", "Iraq": "Baghdad",
    "Ukraine": "Kyiv", "Switzerland": "Bern", "the Czech Republic": "Prague", "Romania": "Bucharest",
    "Scotland": "Edinburgh", "Wales": "Cardiff", "Iceland": "Reykjavik", "Israel": "Jerusalem",
    "Saudi Arabia": "Riyadh", "Indonesia": "Jakarta", "the Philippines": "Manila", "Malaysia": "Kuala Lumpur",
    "Nigeria": "Abuja", "Ethiopia": "Addis Ababa", "Morocco": "Rabat", "Venezuela": "Caracas",
    "New Zealand": "Wellington", "the United States": "Washington", "Brazil": "Brasilia", "Pakistan": "Islamabad",
    "Afghanistan": "Kabul", "Syria": "Damascus", "Lebanon": "Beirut",
}

OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad", "light": "dark",
    "open": "closed", "old": "young", "high": "low", "full": "empty", "early": "late", "hard": "soft",
    "rich": "poor", "strong": "weak", "wet": "dry", "long": "short", "thick": "thin", "heavy": "light",
    "true": "false", "win": "lose", "push": "pull", "left": "right", "good": "bad", "day": "night",
    "in": "out", "top": "bottom", "start": "end", "buy": "sell", "near": "far", "first": "last",
    "above": "below", "inside": "outside", "clean": "dirty", "loud": "quiet", "north": "south",
    "east": "west", "question": "answer", "friend": "enemy", "love": "hate", "alive": "dead",
    "always": "never", "before": "after", "cheap": "expensive", "deep": "shallow", "easy": "difficult",
    "entrance": "exit", "female": "male", "give": "take", "arrive": "leave", "laugh": "cry",
}

PLURALS = {
    "cat": "cats", "dog": "dogs", "mouse": "mice", "child": "children", "man": "men", "woman": "women",
    "tooth": "teeth", "foot": "feet", "goose": "geese", "box": "boxes", "bus": "buses", "baby": "babies",
    "city": "cities", "leaf": "leaves", "knife": "knives", "wife": "wives", "wolf": "wolves",
    "person": "people", "ox": "oxen", "cactus": "cacti", "mango": "mangoes", "house": "houses",
    "book": "books", "apple": "apples", "car": "cars", "tree": "trees", "bird": "birds", "star": "stars",
    "church": "churches", "watch": "watches", "dish": "dishes", "potato": "potatoes", "tomato": "tomatoes",
    "hero": "heroes", "party": "parties", "story": "stories", "lady": "ladies", "key": "keys", "day": "days",
    "toy": "toys", "boy": "boys", "girl": "girls", "horse": "horses", "cow": "cows", "egg": "eggs",
    "hand": "hands", "eye": "eyes", "chair": "chairs", "table": "tables",
}

# everyday facts: (question, accepted answers)
EVERYDAY = (
    ("What color is the sky on a clear day?", ("blue",)),
    ("What color is grass?", ("green",)),
    ("What color is snow?", ("white",)),
    ("What color is a banana?", ("yellow",)),
    ("What color is a ripe tomato?", ("red",)),
    ("What color is coal?", ("black",)),
    ("How many legs does a spider have?", ("8", "eight")),
    ("How many legs does a dog have?", ("4", "four")),
    ("How many legs does a bird have?", ("2", "two")),
    ("How many days are in a week?", ("7", "seven")),
    ("How many months are in a year?", ("12", "twelve")),
    ("How many hours are in a day?", ("24", "twenty-four")),
    ("How many minutes are in an hour?", ("60", "sixty")),
    ("How many sides does a triangle have?", ("3", "three")),
    ("How many sides does a square have?", ("4", "four")),
    ("How many sides does a hexagon have?", ("6", "six")),
    ("How many continents are there?", ("7", "seven")),
    ("What is the largest planet in the solar system?", ("Jupiter",)),
    ("Which planet is known as the red planet?", ("Mars",)),
    ("What planet do we live on?", ("Earth",)),
    ("What is the closest star to the Earth?", ("Sun", "the Sun")),
    ("What is frozen water called?", ("ice",)),
    ("What gas do plants take in from the air?", ("carbon dioxide", "CO2")),
    ("What gas do humans need to breathe?", ("oxygen",)),
    ("What is the largest ocean on Earth?", ("Pacific", "the Pacific Ocean", "Pacific Ocean")),
    ("What is the largest animal on Earth?", ("blue whale", "whale")),
    ("What animal is known as the king of the jungle?", ("lion",)),
    ("What do bees make?", ("honey",)),
    ("What do cows drink?", ("water",)),
    ("Which animal says moo?", ("cow",)),
    ("Which animal says meow?", ("cat",)),
    ("Which animal barks?", ("dog",)),
    ("What is the baby of a cat called?", ("kitten",)),
    ("What is the baby of a dog called?", ("puppy",)),
    ("What is the first month of the year?", ("January",)),
    ("What is the last month of the year?", ("December",)),
    ("Which season comes after winter?", ("spring",)),
    ("Which season comes after summer?", ("autumn", "fall")),
    ("What do you call a person who teaches?", ("teacher",)),
    ("What do you call a person who flies a plane?", ("pilot",)),
    ("What do you call a doctor for animals?", ("vet", "veterinarian")),
    ("In which country are the pyramids of Giza?", ("Egypt",)),
    ("What language is spoken in France?", ("French",)),
    ("What language is spoken in Spain?", ("Spanish",)),
    ("What language is spoken in Germany?", ("German",)),
    ("What is the boiling point of water in degrees Celsius?", ("100", "one hundred")),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("Who wrote Romeo and Juliet?", ("Shakespeare", "William Shakespeare")),
    ("What is the chemical symbol for water?", ("H2O",)),
)


@dataclass(frozen=True)
class Fact:
    question: str
    references: tuple[str, ...]
    form: str  # capital, opposite, plural, arithmetic, everyday


def _arithmetic() -> list[Fact]:
    """Sums, differences and products of small numbers, a fixed set (no randomness to seed)."""
    out = []
    for a, b in ((2, 3), (4, 5), (7, 8), (6, 6), (9, 3), (10, 5), (12, 7), (15, 4), (20, 30), (11, 11),
                 (8, 9), (13, 6), (25, 25), (14, 3), (5, 17)):
        out.append(Fact(f"What is {a} plus {b}?", (str(a + b),), "arithmetic"))
    for a, b in ((9, 4), (10, 3), (15, 5), (20, 8), (12, 5), (17, 9), (30, 10), (7, 2), (50, 20), (16, 7),
                 (11, 4), (25, 5), (40, 15), (13, 8), (100, 1)):
        out.append(Fact(f"What is {a} minus {b}?", (str(a - b),), "arithmetic"))
    for a, b in ((2, 3), (3, 4), (5, 5), (6, 7), (2, 10), (4, 4), (3, 9), (8, 2), (7, 7), (10, 10),
                 (9, 2), (6, 5), (4, 8), (3, 3), (11, 2)):
        out.append(Fact(f"What is {a} times {b}?", (str(a * b),), "arithmetic"))
    return out


def facts() -> list[Fact]:
    """Every question, in a fixed order (the split is by index, seeded: data/splits.py)."""
    out = [Fact(f"What is the capital of {country}?", (city,), "capital") for country, city in CAPITALS.items()]
    out += [Fact(f"What is the opposite of {word}?", (opposite,), "opposite") for word, opposite in OPPOSITES.items()]
    out += [Fact(f"What is the plural of {word}?", (plural,), "plural") for word, plural in PLURALS.items()]
    out += _arithmetic()
    out += [Fact(q, refs, "everyday") for q, refs in EVERYDAY]
    return out
