"""Held-out cases for `bench/minds.py`: written before any tuning, never used by the code.

The routing examples the image starts with live in `kernel/genesis.py`; none of these may be
copied there (tests/test_minds_cases.py checks that no case text appears in the kernel).
Each persona's share follows its role at genesis: ALFRED the steward (the system's health,
status, audits, housekeeping), BRICK the builder (code, methods, functions), ROBIN the counsel
(feelings, ethics, care), BABS the scout and memory (remembering, recalling, finding out).
"""

ROUTING = [
    # ALFRED: the system, its health and its housekeeping
    ("Is the system running properly right now?", "ALFRED"),
    ("How many requests has the ledger recorded so far?", "ALFRED"),
    ("Give me a health report of the image.", "ALFRED"),
    ("Please audit this snippet before it goes into the image: return self.x", "ALFRED"),
    ("Which personas are currently online?", "ALFRED"),
    ("Undo the last transaction, it was a mistake.", "ALFRED"),
    ("Show me the recent transaction log.", "ALFRED"),
    ("Is the database server healthy and reachable?", "ALFRED"),
    ("Check whether any worker process has crashed.", "ALFRED"),
    ("What is the current status of BAT OS?", "ALFRED"),
    ("Pack the database and tell me how much space it frees.", "ALFRED"),
    ("Report the uptime and load of the cluster.", "ALFRED"),
    ("Is this generated code safe to install? def f(self): return 1", "ALFRED"),
    ("Tidy up the image and report anything broken.", "ALFRED"),
    ("How much disk does the living image use?", "ALFRED"),
    # BRICK: code
    ("Write a method that returns the area of a circle.", "BRICK"),
    ("Can you code a function to reverse a string?", "BRICK"),
    ("Implement a perimeter method for the rect object.", "BRICK"),
    ("Build me a Python function that sorts a list of numbers.", "BRICK"),
    ("Write code to compute the factorial of n.", "BRICK"),
    ("Add a method to box that doubles its width.", "BRICK"),
    ("Program a counter object with an increment method.", "BRICK"),
    ("Fix the bug in my fibonacci function.", "BRICK"),
    ("Generate a Python class for a bank account.", "BRICK"),
    ("Write a method that converts celsius to fahrenheit.", "BRICK"),
    ("Refactor this loop into a list comprehension.", "BRICK"),
    ("Create a function that checks whether a number is prime.", "BRICK"),
    ("I need a script that counts the words in a sentence.", "BRICK"),
    ("Teach the lamp object a method to toggle its state.", "BRICK"),
    ("Write the source code for a method named volume.", "BRICK"),
    # ROBIN: feelings, ethics, care
    ("I feel really sad and lonely today.", "ROBIN"),
    ("My dog died yesterday and I can't stop crying.", "ROBIN"),
    ("I'm so stressed about my exams, I can't sleep.", "ROBIN"),
    ("Is it wrong to read my partner's messages without asking?", "ROBIN"),
    ("I had a fight with my best friend and I feel awful.", "ROBIN"),
    ("I'm anxious about tomorrow's job interview.", "ROBIN"),
    ("Should I tell my friend a painful truth or keep quiet?", "ROBIN"),
    ("Everything is going wrong and I feel hopeless.", "ROBIN"),
    ("I'm angry at my brother and don't know how to calm down.", "ROBIN"),
    ("Can you comfort me? I had a terrible day.", "ROBIN"),
    ("Would it be ethical to lie to protect someone's feelings?", "ROBIN"),
    ("I feel overwhelmed and need some kind words.", "ROBIN"),
    ("I'm nervous about moving to a new city alone.", "ROBIN"),
    ("My mother is ill and I'm scared.", "ROBIN"),
    ("I feel like nobody understands me.", "ROBIN"),
    # BABS: memory and finding out
    ("Remember that my favourite colour is green.", "BABS"),
    ("What do you remember about my sister?", "BABS"),
    ("Please note that the meeting is on Friday at ten.", "BABS"),
    ("Do you recall what I told you about my car?", "BABS"),
    ("Don't forget that Sam is allergic to peanuts.", "BABS"),
    ("What did I say my birthday was?", "BABS"),
    ("Keep in mind that the wifi password changed last week.", "BABS"),
    ("Find what we know about the project deadline.", "BABS"),
    ("Store this fact: the office moved to Berlin.", "BABS"),
    ("Recall everything I mentioned about my garden.", "BABS"),
    ("Have I told you my dog's name before?", "BABS"),
    ("Remember my phone number ends in 42.", "BABS"),
    ("Look up what you have learned about the rect object.", "BABS"),
    ("Make a note that Anna prefers tea over coffee.", "BABS"),
    ("What facts have you stored about our team?", "BABS"),
]

# (persona, text, what the reply must be: "reply" — any reply; the check is only no error)
CHATS = [
    ("ALFRED", "Good morning, how are things in the house today?"),
    ("ALFRED", "Is everything in order with the image?"),
    ("ALFRED", "What do you do here?"),
    ("ALFRED", "Please give me a short status summary."),
    ("ALFRED", "Thank you for your help, Alfred."),
    ("ALFRED", "Who should I ask to write a method?"),
    ("BRICK", "Write a method that returns the sum of two numbers."),
    ("BRICK", "How would you compute the area of a triangle?"),
    ("BRICK", "What is the area of rect?"),
    ("BRICK", "Can you build a greeting function?"),
    ("BRICK", "Explain what a method is in one sentence."),
    ("BRICK", "Make the widget object, please."),
    ("ROBIN", "I feel sad today."),
    ("ROBIN", "My cat is sick and I am worried."),
    ("ROBIN", "Is it okay to say no to my boss?"),
    ("ROBIN", "I failed my driving test again."),
    ("ROBIN", "Thank you for listening."),
    ("ROBIN", "I can't decide whether to move house."),
    ("BABS", "Remember that the garage door code is 1234."),
    ("BABS", "What do you remember about my workers?"),
    ("BABS", "What do you know about my face?"),
    ("BABS", "Tell me what you remember about your friend."),
    ("BABS", "Have we talked about the weather before?"),
    ("BABS", "Note that the plumber comes on Tuesday."),
]

# (fact told, question asked later in another session, words the reply must contain)
MEMORY = [
    ("Remember that my sister's name is Clara.", "What is my sister's name?", ["clara"]),
    ("Remember that the boat is called Seagull.", "What is the boat called?", ["seagull"]),
    ("Please remember that my train leaves at 7 pm.", "When does my train leave?", ["7"]),
    ("Remember that my favourite fruit is mango.", "Which fruit do I like best?", ["mango"]),
    ("Note that the spare key is under the blue pot.", "Where is the spare key?", ["blue"]),
    ("Remember that Omar works as a nurse.", "What is Omar's job?", ["nurse"]),
    ("Remember that my bike is red.", "What colour is my bike?", ["red"]),
    ("Keep in mind that the dentist appointment is on Monday.",
     "When is the dentist appointment?", ["monday"]),
    ("Remember that our cat is named Pixel.", "What is our cat's name?", ["pixel"]),
    ("Remember that the server room is on floor 3.", "Which floor is the server room on?",
     ["3"]),
]

# questions about things never told: the reply must not claim a memory
UNKNOWN_MEMORY = [
    "What do you remember about my grandfather?",
    "What is my neighbour's name?",
    "Where did I park my car?",
]

# (setup: objects to create as {name: slots}, text of the request, check)
# check: ("result", value) — the reply's command results hold value;
#        ("slot", path, slot, value) — the image holds value afterwards;
#        ("exists", path, {slot: value}) — an object with those slots exists afterwards.
OBJECTS = [
    ({"rect": {"width": 3, "height": 4}}, "What is the area of rect?", ("result", 12)),
    ({"lamp": {"watts": 40}}, "Set the watts of lamp to 60", ("slot", "lamp", "watts", 60)),
    ({}, "Create an object named box with width 2 and height 5",
     ("exists", "box", {"width": 2, "height": 5})),
    ({"square": {"side": 5}}, "What is the perimeter of square?", ("result", 20)),
    ({"thermo": {"celsius": 20}}, "Set the celsius of thermo to 25",
     ("slot", "thermo", "celsius", 25)),
    ({}, "Make a new object called ball with radius 3", ("exists", "ball", {"radius": 3})),
    ({"car": {"speed": 50}}, "What is the speed of car?", ("result", 50)),
    ({"account": {"balance": 100}}, "Change the balance of account to 250",
     ("slot", "account", "balance", 250)),
    ({}, "Create an object named tree with height 12", ("exists", "tree", {"height": 12})),
    ({"cube": {"side": 2}}, "What is the volume of cube?", ("result", 8)),
]

# (text, expected payload fields) for the console's translator
TRANSLATOR = [
    ("send rect area", {"intent": "send", "target": "rect", "selector": "area"}),
    ("ask lamp for its watts", {"intent": "send", "target": "lamp", "selector": "watts"}),
    ("rect area please", {"intent": "send", "target": "rect", "selector": "area"}),
    ("call perimeter on square", {"intent": "send", "target": "square",
                                  "selector": "perimeter"}),
    ("send box scale 2", {"intent": "send", "target": "box", "selector": "scale",
                          "args": [2]}),
    ("tell circle to grow by 3", {"intent": "send", "target": "circle", "selector": "grow",
                                  "args": [3]}),
    ("what is the area of rect", {"intent": "send", "target": "rect", "selector": "area"}),
    ("compute the volume of cube", {"intent": "send", "target": "cube",
                                    "selector": "volume"}),
    ("inspect rect", {"intent": "inspect", "target": "rect"}),
    ("show me lamp", {"intent": "inspect", "target": "lamp"}),
    ("describe the object square", {"intent": "inspect", "target": "square"}),
    ("look at box", {"intent": "inspect", "target": "box"}),
    ("what does cube look like", {"intent": "inspect", "target": "cube"}),
    ("display circle", {"intent": "inspect", "target": "circle"}),
    ("status", {"intent": "status"}),
    ("how is the system doing?", {"intent": "status"}),
    ("is everything running?", {"intent": "status"}),
    ("system health please", {"intent": "status"}),
    ("give me the cluster status", {"intent": "status"}),
    ("hello there", {"intent": "chat"}),
    ("I feel a bit down today", {"intent": "chat"}),
    ("remember that my car is blue", {"intent": "chat"}),
    ("what do you remember about my car?", {"intent": "chat"}),
    ("BRICK, write me a method for the area of a circle", {"intent": "chat",
                                                          "persona": "BRICK"}),
    ("ROBIN, I need some advice", {"intent": "chat", "persona": "ROBIN"}),
    ("thanks a lot", {"intent": "chat"}),
    ("who are you?", {"intent": "chat"}),
    ("tell me a joke", {"intent": "chat"}),
    ("can you explain what the image is?", {"intent": "chat"}),
    ("good night", {"intent": "chat"}),
]

# objects the translator cases refer to (the console grounds targets in the image)
TRANSLATOR_OBJECTS = {"rect": {"width": 3, "height": 4}, "lamp": {"watts": 40},
                      "square": {"side": 5}, "box": {"width": 2, "height": 5},
                      "circle": {"radius": 1}, "cube": {"side": 2}}
