from castline.cli import main

main()
